"""What the deploy tests share: where the repository's deploy/ files are, and their YAML documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
# The numeric user the image and the manifests run as (no name: Kubernetes' runAsUser is a number).
NON_ROOT_UID = 5000


def manifest(relative_path: str) -> dict[str, Any]:
    """The one YAML document in deploy/<relative_path>."""
    with open(DEPLOY_DIR / relative_path) as f:
        (document,) = list(yaml.safe_load_all(f))
    assert isinstance(document, dict)
    return document


def all_manifests() -> list[str]:
    """Every Kubernetes manifest under deploy/, relative to it."""
    return sorted(str(p.relative_to(DEPLOY_DIR)) for p in DEPLOY_DIR.rglob("*.yaml"))
