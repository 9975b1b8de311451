"""KServe's CRD schemas (pinned copies in schemas/, see extract_crd_schema.py) as strict validators.

A CRD's openAPIV3Schema lists each object's fields but does not forbid others: the API server prunes
or, with kubectl's default strict field validation, rejects unknown fields. additionalProperties: false
on every object that lists its fields (and does not preserve unknown ones) makes jsonschema do the same,
so a misspelt field fails here as it would in `kubectl apply`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).parent / "schemas"
KSERVE_SCHEMAS = {
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "kserve-v0.20.0-servingruntime-v1alpha1.json",
    (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    ): "kserve-v0.20.0-inferenceservice-v1beta1.json",
}


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.cache
def kserve_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    """A validator for one KServe kind, strict about unknown fields."""
    with open(SCHEMAS / KSERVE_SCHEMAS[(api_version, kind)]) as f:
        schema = _strict(json.load(f))
    return jsonschema.Draft7Validator(schema)
