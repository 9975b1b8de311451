"""ModelRegistry: model name -> Model -> {version -> ModelVersion}, version resolution as OVMS does it,
and the changes the poller applies (new versions, retired versions, reconfigured or removed models)."""

from __future__ import annotations

import logging
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openvino as ov

from ..config.model import ModelConfig
from ..errors import (
    MODEL_VERSION_RETIRED,
    ConfigError,
    ServingError,
    model_name_missing,
    model_version_missing,
    model_version_retired,
    version_label_unknown,
)
from ..metrics import Counted
from . import repository
from .version import DEFAULT_MAX_QUEUE, LOADING_WAIT_SECONDS, ErrorCode, ModelState, ModelVersion

log = logging.getLogger(__name__)

RETIRED_STATES = (ModelState.UNLOADING, ModelState.END)


class Model:
    """One served model name: its config and every version it has had (retired ones stay, in END)."""

    def __init__(self, config: ModelConfig, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.config = config
        self.max_queue = max_queue
        self.versions: dict[int, ModelVersion] = {}
        self.lock = threading.Lock()
        # Serialises changes (poller, reload requests) to this model; requests never take it.
        self.change_lock = threading.Lock()
        # False once removed from the configuration: the poller leaves its repository alone.
        self.active = True
        # TF Serving's version labels in force: {label: version}, replaced as a whole by set_labels.
        self.labels: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.config.name

    def default_version(self) -> ModelVersion | None:
        """The highest version in state AVAILABLE (every default-version request asks: one loop)."""
        best = None
        with self.lock:
            for v in self.versions.values():
                if v.state == ModelState.AVAILABLE and (best is None or v.version > best.version):
                    best = v
        return best

    def sorted_versions(self) -> list[ModelVersion]:
        with self.lock:
            return [self.versions[n] for n in sorted(self.versions)]

    def live_versions(self) -> dict[int, ModelVersion]:
        """Versions not retired (START, LOADING, AVAILABLE), by number."""
        with self.lock:
            return {n: v for n, v in self.versions.items() if v.state not in RETIRED_STATES}

    def version_for_label(self, label: str) -> int:
        with self.lock:
            version = self.labels.get(label)
        if version is None:
            raise version_label_unknown(label)
        return version

    # ---- changes (called with change_lock held) ----

    def set_labels(self, labels: dict[str, int], allow_unavailable: bool) -> None:
        """Puts a config's labels in force, as TF Serving's UpdateModelVersionLabelMap: each must name an
        AVAILABLE version, unless unavailable ones are allowed, and then only for a new label or one that
        keeps its version. ConfigError (the labels in force stay) otherwise."""
        with self.lock:
            available = {n for n, mv in self.versions.items() if mv.state == ModelState.AVAILABLE}
            current = dict(self.labels)
        for label, version in sorted(labels.items()):
            allowed = allow_unavailable and current.get(label, version) == version
            if version not in available and not allowed:
                raise ConfigError(
                    f"version labels rejected (the previous ones stay): Request to assign label to "
                    f"version {version} of model {self.name}, which is not currently available "
                    "for inference"
                )
        with self.lock:
            self.labels = dict(labels)
        if labels != current:
            log.info("Version labels of model %s: %s", self.name, labels or "none")

    def load(self, core: ov.Core, versions: dict[int, Path]) -> list[ModelVersion]:
        """Creates and loads versions (in parallel), replacing entries of the same numbers once loaded."""
        created = [
            ModelVersion(self.name, n, p, self.config, self.max_queue)
            for n, p in sorted(versions.items())
        ]
        with self.lock:
            for mv in created:
                # A new version shows as LOADING at once; a replacement keeps the old one serving meanwhile.
                if (
                    mv.version not in self.versions
                    or self.versions[mv.version].state in RETIRED_STATES
                ):
                    self.versions[mv.version] = mv
        if len(created) == 1:
            created[0].load(core)
        elif created:
            with ThreadPoolExecutor(max_workers=min(4, len(created))) as pool:
                list(pool.map(lambda mv: mv.load(core), created))
        replaced = []
        with self.lock:
            for mv in created:
                old = self.versions.get(mv.version)
                # A failed retry replaces the failed entry too, so its new files are not retried again.
                if old is not mv and (
                    mv.state == ModelState.AVAILABLE
                    or old is None
                    or old.error_code != ErrorCode.OK
                ):
                    self.versions[mv.version] = mv
                    if old is not None:
                        replaced.append(old)
        for old in replaced:
            old.retire()
        return created

    def retire(self, numbers: set[int]) -> None:
        with self.lock:
            doomed = [self.versions[n] for n in numbers if n in self.versions]
        for mv in doomed:
            mv.retire()

    def sync(self, core: ov.Core, on_disk: dict[int, Path]) -> None:
        """Brings the served versions in line with the disk and the version policy: new versions are loaded
        before old ones retire, so the default moves without a gap. As in OVMS, nothing is retired in a
        round where a new version failed to load, and a failed version whose files have not changed
        neither counts for the policy nor retires (it stays listed, LOADING with error UNKNOWN) until its
        files change (then it is loaded again) or its directory goes."""
        live = self.live_versions()
        failed = {n for n, mv in live.items() if mv.error_code != ErrorCode.OK}
        stale = {n for n in failed if n in on_disk and not live[n].files_changed()}
        wanted = self.config.version_policy.select(set(on_disk) - stale)
        to_load = {n: on_disk[n] for n in wanted if n not in live or n in failed}
        created = self.load(core, to_load) if to_load else []
        if any(mv.error_code != ErrorCode.OK for mv in created):
            return
        self.retire(set(live) - wanted - stale)

    def reconfigure(self, core: ov.Core, config: ModelConfig, on_disk: dict[int, Path]) -> None:
        """A changed config: every wanted version is loaded anew with it, then the old objects retire."""
        self.config = config
        wanted = config.version_policy.select(set(on_disk))
        self.load(core, {n: on_disk[n] for n in wanted})
        self.retire(set(self.live_versions()) - wanted)


class ModelRegistry:
    """Thread-safe registry of served models."""

    def __init__(
        self,
        core: ov.Core | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        allow_unavailable_labels: bool = False,
    ) -> None:
        self.core = core or ov.Core()
        self.max_queue = max_queue
        # TF Serving's --allow_version_labels_for_unavailable_models (config.json can also set it).
        self.allow_unavailable_labels = allow_unavailable_labels
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

    def resolve(
        self,
        name: str,
        version: int,
        label: str | None = None,
        wait_for_loading: bool = False,
    ) -> ModelVersion:
        """Version 0 means the default (highest AVAILABLE); a label (TF Serving's version_label, which
        excludes a version) means the version its model's config gives it. Versions that exist but cannot
        serve are returned as they are: acquiring them (`serving`) raises OVMS's error for their state."""
        model = self.model(name)
        if label is not None:
            version = model.version_for_label(label)
        if version <= 0:
            found = model.default_version()
            if found is None:
                newest = max(model.sorted_versions(), key=lambda v: v.version, default=None)
                if newest is not None and newest.state in RETIRED_STATES:
                    raise model_version_retired()
                raise model_version_missing()
            return found
        with model.lock:
            found = model.versions.get(version)
        if found is None:
            raise model_version_missing()
        if wait_for_loading and found.state in (ModelState.START, ModelState.LOADING):
            found.wait_until_loaded(LOADING_WAIT_SECONDS)
        return found

    def serving(
        self,
        name: str,
        version: int,
        label: str | None = None,
        counted: Counted | None = None,
        started_ns: int = 0,
    ) -> _Serving:
        """Resolves and holds a version for one request (waiting briefly for a LOADING one), as a context
        manager giving the version. With `counted`, the outcome is counted on the version once it is
        found (as OVMS: an unknown name or version counts nowhere); a Predict's time runs from
        `started_ns` (default: now)."""
        started_ns = started_ns or time.perf_counter_ns()
        return _Serving(self._acquire(name, version, label, counted), counted, started_ns)

    def _acquire(
        self, name: str, version: int, label: str | None, counted: Counted | None
    ) -> ModelVersion:
        # A default-version request that races with a retirement resolves again: the new default was
        # loaded before the old one started retiring.
        for attempt in range(3):
            mv = self.resolve(name, version, label, wait_for_loading=True)
            try:
                mv.acquire()
                return mv
            except ServingError as e:
                specific = version > 0 or label is not None
                if specific or e.message != MODEL_VERSION_RETIRED or attempt == 2:
                    mv.count_failed(counted, e)
                    raise
        raise AssertionError("unreachable")

    # ---- changes ----

    def serve_model(self, config: ModelConfig) -> Model:
        """Adds a model (or reconfigures one), loads what its policy selects, then puts its version labels
        in force; ConfigError if its base path has no versions or a label names a version that is not
        AVAILABLE (the versions are served all the same; the labels in force stay)."""
        on_disk = repository.require_versions(config.base_path)
        with self._lock:
            model = self._models.get(config.name)
            is_new = model is None
            if model is None:
                model = self._models[config.name] = Model(config, self.max_queue)
        with model.change_lock:
            model.active = True
            if is_new or not model.live_versions():
                model.config = config
                model.sync(self.core, on_disk)
            elif model.config != config:
                log.info("Configuration of model %s changed; reloading its versions", config.name)
                model.reconfigure(self.core, config, on_disk)
            else:
                # Same config (labels aside): new version directories first, so that a label can move
                # to a version added with the same reload.
                model.config = config
                model.sync(self.core, on_disk)
            allow = self.allow_unavailable_labels or config.allow_unavailable_labels
            model.set_labels(config.version_labels, allow)
        return model

    def remove_model(self, name: str) -> None:
        """Retires every version; the model stays listed (versions in END), as in OVMS."""
        model = self.model(name)
        with model.change_lock:
            model.active = False
            with model.lock:
                model.labels = {}
            model.retire(set(model.live_versions()))

    def sync_model(self, model: Model) -> None:
        """Applies version directories added or removed since the last look."""
        if not model.active:
            return
        try:
            on_disk = repository.scan_versions(model.config.base_path)
        except Exception as e:
            log.warning("Cannot read repository of model %s: %s", model.name, e)
            return
        with model.change_lock:
            if model.live_versions() or on_disk:
                model.sync(self.core, on_disk)


class _Serving:
    """`with registry.serving(...) as version:`: releases the held version and counts the outcome on
    exit. A class, not a generator context manager: every request enters one (~1.5 us less)."""

    __slots__ = ("counted", "started_ns", "version")

    def __init__(self, version: ModelVersion, counted: Counted | None, started_ns: int) -> None:
        self.version = version
        self.counted = counted
        self.started_ns = started_ns

    def __enter__(self) -> ModelVersion:
        return self.version

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        try:
            if error is None:
                self.version.count_succeeded(self.counted, self.started_ns)
            else:
                self.version.count_failed(self.counted, error)
        finally:
            self.version.release()
