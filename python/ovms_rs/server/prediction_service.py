"""tensorflow.serving.PredictionService: Predict (raw bytes in, raw bytes out) and GetModelMetadata."""

from __future__ import annotations

import time

from .. import _native
from .._proto.tensorflow.core.framework import tensor_shape_pb2
from .._proto.tensorflow.core.protobuf import meta_graph_pb2
from .._proto.tensorflow_serving.apis import get_model_metadata_pb2, model_pb2
from ..errors import INVALID_SIGNATURE_NAME, MODEL_SPEC_MISSING, invalid_argument
from ..metrics import GRPC_METADATA, GRPC_PREDICT
from ..models.registry import ModelRegistry
from ..models.tensor_spec import TensorSpec
from ..models.version import ModelVersion
from ..request.validation import validate

SERVICE = "tensorflow.serving.PredictionService"
SIGNATURE_DEF = "signature_def"
SERVING_DEFAULT = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


class PredictionService:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def predict(
        self, request: bytes | bytearray | _native.RequestBody, timeout: float | None
    ) -> bytes:
        """The hot path: no Python protobuf objects; tensors are numpy views over `request`."""
        started = time.perf_counter_ns()
        name, version, label, inputs, output_filter = _native.parse_predict_request(request)
        with self.registry.serving(name, version, label, GRPC_PREDICT, started) as model_version:
            validated = validate(model_version, inputs, output_filter)
            return model_version.submit(validated, timeout)

    def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, timeout: float | None
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid_argument(MODEL_SPEC_MISSING)
        if list(request.metadata_field) != [SIGNATURE_DEF]:
            raise invalid_argument(INVALID_SIGNATURE_NAME)
        version, label = version_choice(request.model_spec)
        with self.registry.serving(
            request.model_spec.name, version, label, GRPC_METADATA
        ) as model_version:
            return metadata_response(model_version)


def version_choice(spec: model_pb2.ModelSpec) -> tuple[int, str | None]:
    """ModelSpec's oneof: (version, None), (0, version_label), or (0, None) for the default."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version_label":
        return 0, spec.version_label
    return (spec.version.value if choice == "version" else 0), None


def _tensor_info(spec: TensorSpec) -> meta_graph_pb2.TensorInfo:
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d.metadata_size) for d in spec.shape]
    )
    return meta_graph_pb2.TensorInfo(name=spec.name, dtype=spec.dtype, tensor_shape=shape)  # type: ignore[arg-type]


def metadata_response(
    model_version: ModelVersion,
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The SignatureDefMap OVMS returns: one `serving_default` signature with every input and output."""
    signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
    for name, binding in model_version.inputs.items():
        signature.inputs[name].CopyFrom(_tensor_info(binding.spec))
    for name, spec in model_version.outputs.items():
        signature.outputs[name].CopyFrom(_tensor_info(spec))
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature_map.signature_def[SERVING_DEFAULT].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model_version.model_name
    response.model_spec.version.value = model_version.version
    response.metadata[SIGNATURE_DEF].Pack(signature_map)
    return response
