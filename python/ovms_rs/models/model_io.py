"""How a model's inputs meet requests: per-input settings, reshaping (--shape, --batch_size, auto) and
the binding of each public input name to its model port, layout and client-visible shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openvino as ov

from ..config.layout import LayoutRequest
from ..config.model import ModelConfig
from ..config.shapes import AUTO, Dim
from .tensor_spec import TensorSpec, dim_of, ov_dimension, precision_of


@dataclass(frozen=True)
class InputBinding:
    """How a public input reaches the model: its spec as clients see it, and the model port."""

    spec: TensorSpec
    port: int
    layout: str | None  # client-side layout, e.g. "NHWC"
    transpose_to: str | None  # "NCHW" when the server transposes NHWC requests for an NCHW model


def per_input(value: Any, model: ov.Model) -> dict[str, Any]:
    """A per-model setting (one value for a single-input model, or {input name: value})."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if len(model.inputs) != 1:
        raise ValueError('A single shape/layout needs a model with one input; use {"input": ...}')
    return {model.input(0).get_any_name(): value}


def _batch_axis(layout: str | None) -> int | None:
    if layout is None:
        return 0
    return layout.index("N") if "N" in layout else None


def _model_layout(node: ov.Output) -> str | None:
    text = (
        str(node.get_node().get_layout().to_string())
        if hasattr(node.get_node(), "get_layout")
        else ""
    )
    letters = text.strip("[]").replace(",", "")
    # An unset layout prints as "[...]": no information, not "no batch axis".
    return letters if letters and "." not in letters else None


def reshape(
    model: ov.Model,
    config: ModelConfig,
    layouts: dict[str, Any],
    overrides: dict[str, tuple[int, ...]],
) -> None:
    """Applies --shape and --batch_size, then auto-reshape `overrides`; all given in the client's layout."""
    shapes: dict[str, Any] = per_input(config.shape, model)
    for name, override in overrides.items():
        shapes[name] = tuple(Dim.static(n) for n in override)
    new_shapes: dict[str, ov.PartialShape] = {}
    for node in model.inputs:
        name = node.get_any_name()
        shape = shapes.get(name)
        if shape is not None and shape != AUTO:
            client_dims: list[Dim] = list(shape)
            request: LayoutRequest | None = layouts.get(name)
            if request is not None and request.transposes:
                # --shape is given in the client's layout; the model takes the other one.
                client_dims = [client_dims[request.tensor.index(axis)] for axis in request.model]
            new_shapes[name] = ov.PartialShape([ov_dimension(d) for d in client_dims])
    batch = config.batch_size
    if isinstance(batch, Dim) and not overrides:
        for node in model.inputs:
            name = node.get_any_name()
            partial = new_shapes.get(name, node.get_partial_shape())
            request = layouts.get(name)
            layout = request.model if request is not None else _model_layout(node)
            axis = _batch_axis(layout)
            if axis is None or partial.rank.is_dynamic or axis >= partial.rank.get_length():
                continue
            ov_dims = list(partial)
            ov_dims[axis] = ov_dimension(batch)
            new_shapes[name] = ov.PartialShape(ov_dims)
    if new_shapes:
        model.reshape(new_shapes)


def bind_input(
    public: str, port: int, node: ov.Output, request: LayoutRequest | None, model_input: ov.Output
) -> InputBinding:
    dims = tuple(dim_of(d) for d in node.get_partial_shape())
    transpose_to = None
    if request is not None:
        layout: str | None = request.tensor
        if request.transposes:
            # Clients see the shape in their layout.
            dims = tuple(dims[request.model.index(axis)] for axis in request.tensor)
            transpose_to = request.model
    else:
        layout = _model_layout(model_input)
    spec = TensorSpec(public, precision_of(node.get_element_type()), dims, _batch_axis(layout))
    return InputBinding(spec, port, layout, transpose_to)
