"""Hypothesis strategies for PredictRequests (valid, nearly valid and hostile) and the oracle that says
how a server serving the demo model must answer each one.

The oracle follows the server's documented checks in OVMS's order (COMPAT.md): model and version, number
of inputs, input name, zero/negative dims, the binary path, precision, rank, batch, shape, content size,
output_filter. It returns the one code and base message a request must get, or OK with the class a real
photo must get.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import cv2
import grpc
import numpy as np
from helpers import DEMO
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2
from reliability_support import DT_STRING, env_int, photos

DT_FLOAT = 1
KNOWN_DTYPES = (1, 2, 3, 4, 5, 6, 7, 9, 10, 14, 17, 19, 22, 23)
NCHW = (1, 3, 224, 224)
NHWC = (1, 224, 224, 3)
# Larger contents are described by their size only (never built): the server must not need them.
MAX_BUILT_CONTENT = 2 * 602112


def fuzz_settings(examples_env: str, default_examples: int) -> settings:
    """Bounded and reproducible: `default_examples` (or $examples_env) examples, derandomized unless
    OVMS_RS_FUZZ_SEED asks for a different sequence, no example database, no per-example deadline."""
    return settings(
        max_examples=env_int(examples_env, default_examples),
        derandomize="OVMS_RS_FUZZ_SEED" not in os.environ,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        print_blob=True,
    )


def maybe_seeded(test: Any) -> Any:
    """Applies @seed($OVMS_RS_FUZZ_SEED) when set (the default run is derandomized)."""
    value = os.environ.get("OVMS_RS_FUZZ_SEED", "").strip()
    return seed(int(value))(test) if value else test


# ---- the images a binary request may carry ----


@dataclass(frozen=True)
class KnownImage:
    """An encoded image whose answer is known: OK with `label`, or INVALID_ARGUMENT with `error`."""

    data: bytes
    label: int | None = None
    error: str | None = None


@functools.lru_cache(maxsize=1)
def known_images() -> dict[bytes, KnownImage]:
    first = photos()[0]
    bgr = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    encoded = {
        "png": cv2.imencode(".png", bgr)[1].tobytes(),
        "gray": cv2.imencode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[1].tobytes(),
        "rgba": cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))[1].tobytes(),
    }
    images = [KnownImage(p.jpeg, label=p.label) for p in photos()]
    images += [
        KnownImage(encoded["png"], label=first.label),
        KnownImage(encoded["gray"], error="Invalid number of channels in binary input"),
        KnownImage(encoded["rgba"], error="Invalid number of channels in binary input"),
    ]
    return {image.data: image for image in images}


@functools.cache
def photo_bytes(index: int, nhwc: bool) -> bytes:
    photo = photos()[index]
    return (photo.nhwc if nhwc else photo.nchw).tobytes()


@functools.cache
def labels_by_content() -> dict[bytes, int]:
    """tensor_content of each photo, NCHW and NHWC -> its class."""
    found = {}
    for i, photo in enumerate(photos()):
        found[photo_bytes(i, False)] = photo.label
        found[photo_bytes(i, True)] = photo.label
    return found


# ---- strategies ----

DIMS = st.one_of(
    st.sampled_from([1, 3, 224]),
    st.integers(-3, 300),
    st.sampled_from([0, -1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, -(2**63)]),
)
NAMES = st.one_of(
    st.sampled_from(["data", "", "DATA", "prob", "data ", "data\x00", "d" * 300]),
    st.text(max_size=12),
)
IMAGE_BLOBS = st.one_of(
    st.sampled_from(list(known_images())),
    # truncated photos: a header and some of the scan, or less
    st.builds(
        lambda image, cut: image[: max(0, len(image) - cut)],
        st.sampled_from(list(known_images())),
        st.integers(1, 12000),
    ),
    st.binary(max_size=64),
    st.builds(lambda tail: b"\xff\xd8\xff" + tail, st.binary(max_size=64)),
    st.builds(lambda tail: b"\x89PNG\r\n\x1a\n" + tail, st.binary(max_size=64)),
)


def _element_size(dtype: int) -> int:
    return {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 9: 8, 10: 1, 14: 2, 17: 2, 19: 2, 22: 4, 23: 8}.get(
        dtype, 4
    )


def _element_count(shape: list[int]) -> int | None:
    count = 1
    for d in shape:
        if d < 0:
            return None
        count *= d
    return count


def _noise(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def _right(draw: st.DrawFn) -> bool:
    """Whether one aspect of a request is drawn right (80%): with six aspects, about a quarter of the
    requests are entirely valid, and most of the others are wrong in one or two ways."""
    return draw(st.integers(0, 9)) < 8


@st.composite
def tensors(
    draw: st.DrawFn, shape_of_model: tuple[int, ...], small: bool = False, binary: bool = False
) -> tensor_pb2.TensorProto:
    """A TensorProto that is often right for the model and often wrong in one or several ways.
    `small`: no photos and no content over 4 KiB (for mutating the serialized bytes); `binary`: the
    right form is also JPEG/PNG bytes in string_val (half the time)."""
    nhwc = shape_of_model == NHWC
    max_built = 4096 if small else MAX_BUILT_CONTENT
    as_image = binary and draw(st.booleans())
    if _right(draw):
        dtype = DT_STRING if as_image else DT_FLOAT
    else:
        dtype = draw(
            st.one_of(
                st.just(DT_STRING), st.sampled_from(KNOWN_DTYPES), st.integers(-(2**31), 2**31 - 1)
            )
        )
    if _right(draw):
        shape = [1] if dtype == DT_STRING else list(shape_of_model)
    else:
        shape = draw(
            st.one_of(
                st.builds(
                    lambda i, d: [d if j == i else n for j, n in enumerate(shape_of_model)],
                    st.integers(0, len(shape_of_model) - 1),
                    DIMS,
                ),
                st.lists(DIMS, max_size=6),
                st.lists(st.integers(1, 4), min_size=1, max_size=2),  # binary-style [N]
            )
        )
    tensor = tensor_pb2.TensorProto(dtype=dtype)  # type: ignore[arg-type]
    tensor.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        )
    )
    if dtype == DT_STRING:
        if small:
            tensor.string_val.extend(draw(st.lists(st.binary(max_size=64), max_size=3)))
        elif _right(draw):
            tensor.string_val.append(draw(st.sampled_from([p.jpeg for p in photos()])))
        else:
            tensor.string_val.extend(draw(st.lists(IMAGE_BLOBS, max_size=3)))
        return tensor
    if draw(st.integers(0, 9)) == 0:  # strings beside numbers: ignored
        tensor.string_val.extend(draw(st.lists(st.binary(max_size=64), max_size=3)))
    count = _element_count(shape)
    exact = None if count is None else count * _element_size(dtype)
    if _right(draw):
        content = (
            "exact"
            if small
            else draw(st.sampled_from(["photo", "photo", "photo", "float_val", "exact"]))
        )
    else:
        content = draw(st.sampled_from(["off", "noise", "none", "float_val", "typed"]))
    if content == "photo":
        tensor.tensor_content = photo_bytes(draw(st.integers(0, len(photos()) - 1)), nhwc)
    elif content in ("exact", "off") and exact is not None and exact <= max_built:
        n = (
            exact
            if content == "exact"
            else max(0, exact + draw(st.sampled_from([-4, -1, 1, 2, 4, 4096])))
        )
        tensor.tensor_content = _noise(n, draw(st.integers(0, 2**32 - 1)))
    elif content == "noise":
        tensor.tensor_content = draw(st.binary(max_size=64))
    elif content == "float_val":
        if not small and draw(st.booleans()):
            photo = photos()[draw(st.integers(0, len(photos()) - 1))]
            values = (photo.nhwc if nhwc else photo.nchw).ravel()
            cut = draw(st.sampled_from([0, 0, 0, 1, 7]))
            tensor.float_val.extend(values[: len(values) - cut].tolist())
        else:
            tensor.float_val.extend(draw(st.lists(st.floats(width=32), max_size=16)))
    elif content == "typed":
        which = draw(
            st.sampled_from(
                [
                    "int_val",
                    "int64_val",
                    "bool_val",
                    "half_val",
                    "double_val",
                    "uint32_val",
                    "uint64_val",
                ]
            )
        )
        if which == "int64_val":
            tensor.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=16)))
        elif which == "bool_val":
            tensor.bool_val.extend(draw(st.lists(st.booleans(), max_size=16)))
        elif which == "half_val":
            tensor.half_val.extend(draw(st.lists(st.integers(0, 2**16 - 1), max_size=16)))
        elif which == "double_val":
            tensor.double_val.extend(draw(st.lists(st.floats(), max_size=16)))
        elif which == "uint32_val":
            tensor.uint32_val.extend(draw(st.lists(st.integers(0, 2**32 - 1), max_size=16)))
        elif which == "uint64_val":
            tensor.uint64_val.extend(draw(st.lists(st.integers(0, 2**64 - 1), max_size=16)))
        else:
            tensor.int_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=16)))
    return tensor


@st.composite
def predict_requests(
    draw: st.DrawFn,
    shape_of_model: tuple[int, ...] = NCHW,
    small: bool = False,
    binary: bool = False,
) -> predict_pb2.PredictRequest:
    """Requests for the demo model served as `shape_of_model` (accepting JPEG/PNG when `binary`): each
    aspect (model name, version, inputs, the tensor's dtype, shape and content, output_filter) is right
    80% of the time and otherwise drawn from valid, odd and hostile values."""
    req = predict_pb2.PredictRequest()
    if _right(draw):
        req.model_spec.name = DEMO
    else:
        req.model_spec.name = draw(
            st.one_of(
                st.sampled_from(["", DEMO + " ", "resnet", DEMO.upper()]), st.text(max_size=16)
            )
        )
    if _right(draw):
        version = draw(st.sampled_from([None, 0, 1]))
    else:
        version = draw(
            st.one_of(st.sampled_from([2, -1, 2**62, -(2**63)]), st.integers(-(2**63), 2**63 - 1))
        )
    if version is not None:
        req.model_spec.version.value = version
    tensor = tensors(shape_of_model, small, binary)
    if _right(draw):
        req.inputs["data"].CopyFrom(draw(tensor))
    else:
        for name in draw(st.lists(st.one_of(st.just("data"), NAMES), max_size=3)):
            req.inputs[name].CopyFrom(draw(tensor))
    if _right(draw):
        req.output_filter.extend(draw(st.sampled_from([[], [], ["prob"]])))
    else:
        req.output_filter.extend(
            draw(st.lists(st.one_of(st.just("prob"), NAMES), min_size=1, max_size=3))
        )
    if draw(st.booleans()):
        req.model_spec.signature_name = draw(st.sampled_from(["serving_default", "", "anything"]))
    return req


# ---- mutations of serialized requests ----

MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]),
        st.integers(0, 2**20),
        st.binary(min_size=1, max_size=10),
    ),
    min_size=1,
    max_size=4,
)


def mutate(payload: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(payload)
    for op, where, blob in mutations:
        at = where % (len(data) + 1)
        if op == "flip" and data:
            data[at % len(data)] ^= 1 << (blob[0] % 8)
        elif op == "set" and data:
            data[at % len(data)] = blob[0]
        elif op == "insert":
            data[at:at] = blob
        elif op == "delete":
            del data[at : at + blob[0] % 16 + 1]
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate":
            data[at:at] = data[at : at + blob[0] % 32 + 1]
    return bytes(data)


# ---- the oracle ----


@dataclass
class Expected:
    """The one acceptable answer: `code` and base message, or OK (with the class of a real photo).
    `also` lists other (code, base message) pairs accepted where the server may legitimately go
    either way (a truncated JPEG may still decode)."""

    code: grpc.StatusCode
    message: str = ""
    label: int | None = None
    also: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)

    def accepts(self, code: grpc.StatusCode, details: str) -> bool:
        return any(
            code == c and (c == grpc.StatusCode.OK or details == m or details.startswith(m + " - "))
            for c, m in [(self.code, self.message), *self.also]
        )


OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def expected(
    req: predict_pb2.PredictRequest, shape_of_model: tuple[int, ...], binary: bool
) -> Expected:
    """How a server serving the demo model as `shape_of_model` (NCHW, or NHWC with JPEG/PNG accepted
    when `binary`) must answer `req`."""
    if req.model_spec.name != DEMO:
        return Expected(NOT_FOUND, "Model with requested name is not found")
    version = req.model_spec.version.value if req.model_spec.HasField("version") else 0
    if version > 1:
        return Expected(NOT_FOUND, "Model with requested version is not found")
    if len(req.inputs) != 1:
        return Expected(INVALID, "Invalid number of inputs")
    if "data" not in req.inputs:
        return Expected(INVALID, "Missing input with specific name")
    tensor = req.inputs["data"]
    shape = [d.size for d in tensor.tensor_shape.dim]
    if any(d <= 0 for d in shape):
        return Expected(INVALID, "Invalid input shape")
    if tensor.dtype == DT_STRING:
        return _expected_binary(tensor, shape, binary, list(req.output_filter))
    if tensor.dtype != DT_FLOAT:
        return Expected(INVALID, "Invalid input precision")
    problem = _shape_problem(shape, shape_of_model)
    if problem:
        return Expected(INVALID, problem)
    count = _element_count(shape)
    assert count is not None
    content = tensor.tensor_content
    if content or not tensor.float_val:
        if len(content) != count * 4:
            return Expected(INVALID, "Invalid content size of tensor proto")
    elif len(tensor.float_val) != count:
        return Expected(INVALID, "Invalid number of values in tensor proto container")
    if not content:  # the values came in float_val
        content = np.array(tensor.float_val, np.float32).tobytes()
    return _expected_outputs(list(req.output_filter), labels_by_content().get(content))


def _shape_problem(shape: list[int], shape_of_model: tuple[int, ...]) -> str | None:
    if len(shape) != len(shape_of_model):
        return "Invalid number of shape dimensions"
    if shape[0] != shape_of_model[0]:
        return "Invalid input batch size"
    if tuple(shape) != shape_of_model:
        return "Invalid input shape"
    return None


def _expected_outputs(output_filter: list[str], label: int | None) -> Expected:
    if any(name != "prob" for name in output_filter):
        return Expected(INVALID, "Invalid output name in output_filter")
    return Expected(OK, label=label)


def _expected_binary(
    tensor: tensor_pb2.TensorProto, shape: list[int], binary: bool, output_filter: list[str]
) -> Expected:
    images = list(tensor.string_val)
    if len(shape) != 1:
        return Expected(INVALID, "Invalid number of shape dimensions")
    if shape[0] != len(images):
        return Expected(INVALID, "Invalid input batch size")
    if not binary:
        return Expected(
            INVALID, "Received binary image input but resource not configured to accept NHWC layout"
        )
    if len(images) != 1:
        return Expected(INVALID, "Invalid input batch size")
    image = images[0]
    if not image:
        return Expected(INVALID, "String val is empty")
    known = known_images().get(image)
    if known is not None and known.error is not None:
        return Expected(INVALID, known.error)
    after = _expected_outputs(output_filter, known.label if known else None)
    if known is not None:
        return after
    # Unknown bytes (truncated or random): a decoder may reject them, or decode what is there.
    failed = Expected(
        INVALID,
        "Image parsing failed",
        also=[(INVALID, "Invalid number of channels in binary input")],
    )
    failed.also.append((after.code, after.message))
    return failed
