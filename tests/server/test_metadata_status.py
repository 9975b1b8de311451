"""GetModelMetadata and GetModelStatus on the demo model, through the project's stubs."""

from __future__ import annotations

from helpers import DEMO, ServerProcess, status_request
from ovms_rs._proto.tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2


def _metadata(
    server: ServerProcess, version: int | None = None
) -> get_model_metadata_pb2.SignatureDefMap:
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = DEMO
    if version is not None:
        req.model_spec.version.value = version
    reply = server.prediction_stub().GetModelMetadata(req, timeout=30)
    assert reply.model_spec.name == DEMO
    assert reply.model_spec.version.value == 1
    any_msg = reply.metadata["signature_def"]
    assert any_msg.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    assert any_msg.Unpack(sig_map)
    return sig_map


def test_metadata_signature(demo_server: ServerProcess) -> None:
    for version in (None, 0, 1):
        sig = _metadata(demo_server, version).signature_def["serving_default"]
        assert sig.method_name == "tensorflow/serving/predict"
        ((name, info),) = sig.inputs.items()
        assert (name, info.name, info.dtype) == ("data", "data", 1)
        assert [d.size for d in info.tensor_shape.dim] == [1, 3, 224, 224]
        ((name, info),) = sig.outputs.items()
        assert (name, info.dtype, [d.size for d in info.tensor_shape.dim]) == ("prob", 1, [1, 1000])


def test_metadata_nhwc_view(nhwc_server: ServerProcess) -> None:
    sig = _metadata(nhwc_server).signature_def["serving_default"]
    assert [d.size for d in sig.inputs["data"].tensor_shape.dim] == [1, 224, 224, 3]


def test_status_available(demo_server: ServerProcess) -> None:
    for version in (None, 1):
        reply = demo_server.model_stub().GetModelStatus(status_request(DEMO, version), timeout=30)
        (status,) = reply.model_version_status
        assert status.version == 1
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert status.status.error_code == 0
        assert status.status.error_message == "OK"  # the code's name, as OVMS
