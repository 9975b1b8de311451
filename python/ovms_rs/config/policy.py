"""Model version policies: which of the versions on disk are served."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass(frozen=True)
class VersionPolicy:
    """OVMS's model_version_policy: {"latest": {"num_versions": N}}, {"all": {}} or
    {"specific": {"versions": [...]}}. The default serves the single highest version."""

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = field(default_factory=frozenset)

    def select(self, on_disk: set[int]) -> set[int]:
        if self.kind == "all":
            return set(on_disk)
        if self.kind == "specific":
            return on_disk & self.versions
        return set(sorted(on_disk)[-self.num_versions :])

    @staticmethod
    def parse(value: object) -> VersionPolicy:
        if value is None or value == "":
            return VersionPolicy()
        if not isinstance(value, dict) or len(value) != 1:
            raise ConfigError(f"Invalid model_version_policy: {value!r}")
        ((kind, body),) = value.items()
        if not isinstance(body, dict):
            raise ConfigError(f"Invalid model_version_policy: {value!r}")
        if kind == "all" and not body:
            return VersionPolicy("all")
        if kind == "latest" and set(body) <= {"num_versions"}:
            n = body.get("num_versions", 1)
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(
                    f"Invalid model_version_policy: num_versions must be >= 1: {value!r}"
                )
            return VersionPolicy("latest", num_versions=n)
        if kind == "specific" and set(body) == {"versions"}:
            versions = body["versions"]
            if not isinstance(versions, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions
            ):
                raise ConfigError(
                    f"Invalid model_version_policy: versions must be positive integers: {value!r}"
                )
            return VersionPolicy("specific", versions=frozenset(versions))
        raise ConfigError(f"Invalid model_version_policy: {value!r}")
