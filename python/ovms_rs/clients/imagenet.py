"""ImageNet class names (shipped with the package) and top-1 classes from a batch of scores."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import demo_dir

# Models trained with a "background" class output 1001 scores; class k is then at index k + 1.
_WITH_BACKGROUND = 1001


@cache
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names, by class id."""
    text = (demo_dir() / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def class_name(class_id: int) -> str:
    names = class_names()
    return names[class_id] if 0 <= class_id < len(names) else f"unknown class {class_id}"


def top_classes(scores: npt.NDArray[Any]) -> list[int]:
    """The argmax of each item of a batch, shifted down by one for 1001-class outputs."""
    if scores.ndim == 0 or scores.shape[0] == 0:
        return []
    rows = scores.reshape(scores.shape[0], -1)
    offset = 1 if scores.ndim > 1 and scores.shape[1] == _WITH_BACKGROUND else 0
    return [int(i) - offset for i in np.argmax(rows, axis=1)]
