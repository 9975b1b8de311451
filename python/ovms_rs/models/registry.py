"""ModelRegistry: model name -> Model -> {version -> ModelVersion}, and version resolution as OVMS does it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import openvino as ov

from ..config import ModelConfig
from ..errors import model_name_missing, model_version_missing
from . import repository
from .version import LOADING_WAIT_SECONDS, ModelState, ModelVersion

log = logging.getLogger(__name__)


class Model:
    """One served model name: its config and every version it has had (retired ones stay, in END)."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.versions: dict[int, ModelVersion] = {}
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    def default_version(self) -> ModelVersion | None:
        """The highest version in state AVAILABLE."""
        with self.lock:
            available = [v for v in self.versions.values() if v.state == ModelState.AVAILABLE]
        return max(available, key=lambda v: v.version, default=None)

    def sorted_versions(self) -> list[ModelVersion]:
        with self.lock:
            return [self.versions[n] for n in sorted(self.versions)]


class ModelRegistry:
    """Thread-safe registry of served models; loading and retiring happen through it."""

    def __init__(self, core: ov.Core | None = None) -> None:
        self.core = core or ov.Core()
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()

    def model(self, name: str) -> Model:
        with self._lock:
            model = self._models.get(name)
        if model is None:
            raise model_name_missing()
        return model

    def models(self) -> list[Model]:
        with self._lock:
            return list(self._models.values())

    def resolve(self, name: str, version: int, wait_for_loading: bool = False) -> ModelVersion:
        """Version 0 means the default (highest AVAILABLE). Raises OVMS's NOT_FOUND / UNAVAILABLE errors
        through ModelVersion.serving() for versions that exist but cannot serve."""
        model = self.model(name)
        if version <= 0:
            found = model.default_version()
            if found is None:
                raise model_version_missing()
            return found
        with model.lock:
            found = model.versions.get(version)
        if found is None:
            raise model_version_missing()
        if wait_for_loading and found.state in (ModelState.START, ModelState.LOADING):
            found.wait_until_loaded(LOADING_WAIT_SECONDS)
        return found

    # ---- changes ----

    def add_model(self, config: ModelConfig) -> Model:
        with self._lock:
            model = self._models.get(config.name)
            if model is None:
                model = self._models[config.name] = Model(config)
            else:
                model.config = config
            return model

    def load_versions(self, model: Model, versions: dict[int, Path]) -> list[ModelVersion]:
        """Creates and loads the given versions in parallel; returns them (failed ones stay LOADING)."""
        created = []
        with model.lock:
            for number, path in sorted(versions.items()):
                mv = ModelVersion(model.name, number, path, model.config)
                model.versions[number] = mv
                created.append(mv)
        if len(created) == 1:
            created[0].load(self.core)
        elif created:
            with ThreadPoolExecutor(max_workers=min(4, len(created))) as pool:
                list(pool.map(lambda mv: mv.load(self.core), created))
        return created

    def serve_model(self, config: ModelConfig) -> Model:
        """Adds a model and loads the versions its policy selects from its base path."""
        on_disk = repository.require_versions(config.base_path)
        model = self.add_model(config)
        selected = config.version_policy.select(set(on_disk))
        self.load_versions(model, {n: on_disk[n] for n in selected})
        return model
