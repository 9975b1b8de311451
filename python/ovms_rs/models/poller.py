"""The repository poller: applies new/removed version directories and config.json changes while serving."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..config.batching import BatchingParameters
from ..config.config_json import load_config_file
from ..config.model import ModelConfig
from ..errors import ConfigError
from .registry import ModelRegistry

log = logging.getLogger(__name__)


class ConfigApplier:
    """Keeps the registry in line with the model configs (CLI flags, or config.json re-read on change)."""

    def __init__(
        self,
        registry: ModelRegistry,
        config_path: Path | None,
        default_batching: BatchingParameters | None = None,
    ) -> None:
        self.registry = registry
        self.config_path = config_path
        self.default_batching = default_batching  # --enable_batching
        self._last_text: str | None = None
        self._lock = threading.Lock()

    def apply(self, models: list[ModelConfig]) -> None:
        """Adds new models, reconfigures changed ones, retires removed ones. One bad model is skipped."""
        names = {m.name for m in models}
        for config in models:
            try:
                self.registry.serve_model(config)
            except ConfigError as e:
                log.error("Model %s skipped: %s", config.name, e)
        for model in self.registry.models():
            if model.name not in names and model.active:
                log.info("Model %s removed from the configuration; retiring it", model.name)
                self.registry.remove_model(model.name)

    def reload_config(self) -> None:
        """Re-reads config.json and applies it; ConfigError (file rejected as a whole) leaves all as is."""
        if self.config_path is None:
            return
        with self._lock:
            text = _read(self.config_path)
            models = load_config_file(self.config_path, self.default_batching)
            self._last_text = text
            self.apply(models)

    def reload_all(self) -> bool:
        """REST `/v1/config/reload`: the config file (if served from one), then every model's versions;
        True if anything changed. ConfigError when the file is rejected (nothing changes then)."""
        before = self._snapshot()
        self.reload_config()
        for model in self.registry.models():
            self.registry.sync_model(model)
        return self._snapshot() != before

    def _snapshot(self) -> set[tuple[str, int, int]]:
        """Every version object the registry holds and its state (a reloaded version is a new object)."""
        return {
            (model.name, id(mv), int(mv.state))
            for model in self.registry.models()
            for mv in model.sorted_versions()
        }

    def poll_once(self) -> None:
        if self.config_path is not None:
            text: str | None
            try:
                text = _read(self.config_path)
            except ConfigError as e:
                log.error("%s", e)
                text = self._last_text
            if text != self._last_text:
                try:
                    self.reload_config()
                except ConfigError as e:
                    log.error("Configuration file rejected, keeping the current one: %s", e)
                    self._last_text = text  # don't log the same bad file every poll
        for model in self.registry.models():
            self.registry.sync_model(model)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise ConfigError(f"Unable to read config file: {path}: {e.strerror}") from None


class Poller:
    """Runs ConfigApplier.poll_once every `interval` seconds on a daemon thread, then `after_poll()`."""

    def __init__(
        self, applier: ConfigApplier, interval: float, after_poll: Callable[[], None] = lambda: None
    ) -> None:
        self.applier = applier
        self.interval = interval
        self.after_poll = after_poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="repository-poller", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.applier.poll_once()
                self.after_poll()
            except Exception:  # the poller must survive anything the file system does
                log.exception("Repository poll failed")
