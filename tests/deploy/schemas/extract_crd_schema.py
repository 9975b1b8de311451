"""Writes one version's openAPIV3Schema from a CustomResourceDefinition, descriptions dropped, as JSON.

How the pinned KServe schemas here were made (from a checkout of kserve/kserve at tag v0.20.0):
    python extract_crd_schema.py config/crd/full/serving.kserve.io_servingruntimes.yaml v1alpha1 \
        > kserve-v0.20.0-servingruntime-v1alpha1.json
    python extract_crd_schema.py config/crd/full/serving.kserve.io_inferenceservices.yaml v1beta1 \
        > kserve-v0.20.0-inferenceservice-v1beta1.json
Descriptions are documentation only (no validation keyword reads them) and most of the bytes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(crd_path: str, version: str) -> None:
    with open(crd_path) as f:
        crd = yaml.safe_load(f)
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = without_descriptions(entry["schema"]["openAPIV3Schema"])
    json.dump(schema, sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
