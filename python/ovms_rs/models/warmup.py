"""Warmup as TF Serving does it: before a version turns AVAILABLE, replay the PredictRequests of its
`assets.extra/tf_serving_warmup_requests` (a TFRecord file of PredictionLog), and, with `"warmup":
"zeros"`, one request of zeros. Requests take the path clients' requests take (the Rust parser,
`validation.validate`, `ModelVersion.infer`), so the first client request finds the infer requests,
the kernels and any auto-reshape already made. Any failure (bad framing or CRC, an unparsable record,
more than 1000 records, a request the model refuses) fails the version's load, as in TF Serving.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from google.protobuf.message import DecodeError

from .. import _native
from .._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from .._proto.tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from ..errors import ServingError
from ..request.validation import validate
from .version import ModelVersion

log = logging.getLogger(__name__)

# TF Serving's names and limit (servables/tensorflow/saved_model_warmup_util.cc).
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000

# Bytes per element of each precision, for a request of zeros.
_ITEM_SIZE = {
    "FP32": 4, "FP64": 8, "I32": 4, "U8": 1, "I16": 2, "I8": 1, "I64": 8, "BOOL": 1, "BF16": 2,
    "U16": 2, "FP16": 2, "U32": 4, "U64": 8,
}  # fmt: skip


class WarmupError(Exception):
    """The version cannot be warmed up: its load fails with this reason."""


def warm_up(mv: ModelVersion) -> None:
    """Runs the version's warmup (its config's `warmup`: file, zeros or none); WarmupError on failure."""
    mode = mv.config.warmup
    if mode == "none":
        return
    path = mv.path / WARMUP_FILE
    if path.is_file():
        replay_file(mv, path)
    if mode == "zeros":
        started = time.monotonic()
        try:
            _predict(mv, zeros_request(mv))
        except ServingError as e:
            raise WarmupError(f"warmup with zeros failed: {e}") from None
        log.info(
            "Warmed up %s version %d with zeros in %.1f ms",
            mv.model_name,
            mv.version,
            (time.monotonic() - started) * 1000,
        )


def replay_file(mv: ModelVersion, path: Path) -> int:
    """Replays every PredictRequest of a warmup file; returns how many."""
    started = time.monotonic()
    try:
        records = _native.read_tfrecords(path.read_bytes(), MAX_RECORDS)
    except OSError as e:
        raise WarmupError(f"Cannot read warmup file {path}: {e.strerror}") from None
    except ValueError as e:
        raise WarmupError(f"Bad warmup file {path} (not TFRecord, or corrupted): {e}") from None
    if len(records) > MAX_RECORDS:
        raise WarmupError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
    for i, record in enumerate(records):
        try:
            entry = prediction_log_pb2.PredictionLog.FromString(record)
        except DecodeError:
            raise WarmupError(f"Failed to parse warmup record {i} from {path}") from None
        if entry.WhichOneof("log_type") != "predict_log":
            raise WarmupError(
                f"Unsupported log_type for warmup in record {i} from {path}: only predict_log is served"
            )
        try:
            _predict(mv, entry.predict_log.request.SerializeToString())
        except (ServingError, _native.InvalidInput) as e:
            raise WarmupError(f"Warmup record {i} from {path} failed: {e}") from None
    log.info(
        "Finished reading warmup data for model %s version %d at %s. Number of warmup records read: "
        "%d. Elapsed time: %.1f ms",
        mv.model_name,
        mv.version,
        path,
        len(records),
        (time.monotonic() - started) * 1000,
    )
    return len(records)


def _predict(mv: ModelVersion, request: bytes) -> None:
    """One Predict on this version (the record's model_spec is not looked at, as in TF Serving)."""
    _, _, _, inputs, output_filter = _native.parse_predict_request(request)
    validated = validate(mv, inputs, output_filter)
    mv.infer(validated.arrays, validated.ports, compiled=validated.compiled)


def zeros_request(mv: ModelVersion) -> bytes:
    """A PredictRequest of zeros in every input's shape (dynamic dimensions: their lower bound, >= 1)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = mv.model_name
    for name, binding in mv.inputs.items():
        spec = binding.spec
        if spec.precision not in _ITEM_SIZE:
            raise WarmupError(f"warmup with zeros cannot make input {name} ({spec.precision})")
        shape = [max(d.lo, 1) for d in spec.shape]
        tensor = tensor_pb2.TensorProto(
            dtype=spec.dtype,  # type: ignore[arg-type]
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape]
            ),
            tensor_content=bytes(math.prod(shape) * _ITEM_SIZE[spec.precision]),
        )
        request.inputs[name].CopyFrom(tensor)
    serialized: bytes = request.SerializeToString()
    return serialized
