"""The two gRPC transports (the Rust one, default, and grpcio's, `--grpc_transport grpcio`) answer alike:
same replies, same codes and messages, compressed requests accepted (TLS on both: test_security.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from helpers import (
    DEMO,
    ServerProcess,
    labeled_photos,
    output_array,
    photo_nchw,
    predict_request,
    status_request,
    tensor_proto,
)
from ovms_rs._proto.tensorflow_serving.apis import get_model_metadata_pb2

PREDICT = "/tensorflow.serving.PredictionService/Predict"
STATUS = "/tensorflow.serving.ModelService/GetModelStatus"


@pytest.fixture(scope="module", params=["native", "grpcio"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp(request.param)) / "server.log"
    with ServerProcess("--grpc_transport", request.param, log_path=log) as s:
        yield s


def _raw(server: ServerProcess, method: str, payload: bytes, **kwargs: object) -> grpc.RpcError:
    assert server.channel is not None
    call = server.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as err:
        call(payload, timeout=30, **kwargs)
    return err.value


def test_predict_metadata_status(server: ServerProcess) -> None:
    path, label = labeled_photos()[0]
    reply = server.prediction_stub().Predict(
        predict_request({"data": tensor_proto(photo_nchw(path))}), timeout=30
    )
    assert int(np.argmax(output_array(reply.outputs["prob"]))) == label
    meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    meta.model_spec.name = DEMO
    assert server.prediction_stub().GetModelMetadata(meta, timeout=30).model_spec.name == DEMO
    status = server.model_stub().GetModelStatus(status_request(DEMO), timeout=30)
    assert [s.version for s in status.model_version_status] == [1]


def test_errors_have_the_same_code_and_message(server: ServerProcess) -> None:
    missing = _raw(server, PREDICT, predict_request({}, model="nope").SerializeToString())
    assert (missing.code(), missing.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Model with requested name is not found",
    )
    garbage = _raw(server, PREDICT, b"\xff\xff\xff\xff")
    assert garbage.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert garbage.details().startswith("Invalid message structure")
    bad_status = _raw(server, STATUS, b"\xff\xff\xff\xff")
    assert (bad_status.code(), bad_status.details()) == (
        grpc.StatusCode.INTERNAL,
        "Exception deserializing request!",
    )


def test_unknown_method_is_unimplemented(server: ServerProcess) -> None:
    for method in ("/tensorflow.serving.PredictionService/Classify", "/no.such.Service/Predict"):
        assert _raw(server, method, b"").code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_compressed_requests_are_served(
    server: ServerProcess, compression: grpc.Compression
) -> None:
    path, label = labeled_photos()[1]
    request = predict_request({"data": tensor_proto(photo_nchw(path))})
    reply = server.prediction_stub().Predict(request, timeout=30, compression=compression)
    assert int(np.argmax(output_array(reply.outputs["prob"]))) == label


def test_a_compressed_bomb_is_refused(tmp_path: Path) -> None:
    """64 MB of zeros gzip to ~64 KB: with --max_message_bytes 1000000 the server stops decompressing at
    the limit and answers RESOURCE_EXHAUSTED."""
    with ServerProcess("--max_message_bytes", "1000000", log_path=tmp_path / "server.log") as s:
        x = np.zeros((16, 3, 576, 576), np.float32)  # 64 MB
        err = _raw(
            s,
            PREDICT,
            predict_request({"data": tensor_proto(x)}).SerializeToString(),
            compression=grpc.Compression.Gzip,
        )
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ok = s.prediction_stub().Predict(
            predict_request({"data": tensor_proto(np.zeros((1, 3, 224, 224), np.float32))}),
            timeout=30,
        )
        assert output_array(ok.outputs["prob"]).shape == (1, 1000)
