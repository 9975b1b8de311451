"""Security at the gRPC port: TLS (server certificate, optional client-certificate verification), the
bind address, and refusal of bad TLS flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from helpers import DEMO, ServerProcess, env_without_proxy, free_port
from ovms_rs._proto.tensorflow_serving.apis import prediction_service_pb2_grpc
from reliability_support import (
    Photo,
    SecureServerProcess,
    TlsFiles,
    listening_addresses,
    photo_request,
    predict,
    secure_channel,
)

OK = grpc.StatusCode.OK


def _tls_args(tls: TlsFiles, client_ca: bool = False) -> list[str]:
    args = ["--grpc_tls_cert", str(tls.server_cert), "--grpc_tls_key", str(tls.server_key)]
    return [*args, "--grpc_tls_client_ca", str(tls.ca)] if client_ca else args


def _credentials(
    tls: TlsFiles, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def _predict_over(channel: grpc.Channel, photo: Photo) -> tuple[grpc.StatusCode, int | None]:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        reply = stub.Predict(photo_request(photo, DEMO), timeout=10)
    except grpc.RpcError as e:
        return e.code(), None
    return OK, int(np.frombuffer(reply.outputs["prob"].tensor_content, np.float32).argmax())


TRANSPORTS = pytest.mark.parametrize("transport", ["native", "grpcio"])


def _assert_transport(server_log: Path, transport: str) -> None:
    """The transport asked for is the one serving TLS (the native one once fell back to grpcio's)."""
    assert f"gRPC transport: {transport} with TLS" in server_log.read_text()


@TRANSPORTS
def test_tls(
    tls_files: TlsFiles, server_log: Path, demo_photos: tuple[Photo, ...], transport: str
) -> None:
    """TLS with a server certificate: a client trusting the CA gets answers; a plaintext client, or one
    that does not trust the CA, gets none; the server keeps serving."""
    photo = demo_photos[0]
    args = [*_tls_args(tls_files), "--grpc_transport", transport]
    with SecureServerProcess(
        *args, credentials=_credentials(tls_files), log_path=server_log
    ) as server:
        _assert_transport(server_log, transport)
        got = predict(server, photo_request(photo, DEMO))
        assert got.code == OK and got.top_classes() == [photo.label]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            assert _predict_over(plain, photo) == (grpc.StatusCode.UNAVAILABLE, None)
        untrusting = grpc.ssl_channel_credentials(
            root_certificates=tls_files.rogue_client_cert.read_bytes()
        )
        with secure_channel(server.port, untrusting) as channel:
            assert _predict_over(channel, photo) == (grpc.StatusCode.UNAVAILABLE, None)
        assert server.alive
        assert predict(server, photo_request(photo, DEMO)).code == OK


@TRANSPORTS
def test_tls_with_client_certificates(
    tls_files: TlsFiles, server_log: Path, demo_photos: tuple[Photo, ...], transport: str
) -> None:
    """--grpc_tls_client_ca: only clients presenting a certificate signed by that CA are served."""
    photo = demo_photos[1]
    with SecureServerProcess(
        *_tls_args(tls_files, client_ca=True),
        "--grpc_transport",
        transport,
        credentials=_credentials(tls_files, tls_files.client_cert, tls_files.client_key),
        log_path=server_log,
    ) as server:
        _assert_transport(server_log, transport)
        got = predict(server, photo_request(photo, DEMO))
        assert got.code == OK and got.top_classes() == [photo.label]
        with secure_channel(server.port, _credentials(tls_files)) as no_cert:
            assert _predict_over(no_cert, photo) == (grpc.StatusCode.UNAVAILABLE, None)
        rogue = _credentials(tls_files, tls_files.rogue_client_cert, tls_files.rogue_client_key)
        with secure_channel(server.port, rogue) as channel:
            assert _predict_over(channel, photo) == (grpc.StatusCode.UNAVAILABLE, None)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            assert _predict_over(plain, photo) == (grpc.StatusCode.UNAVAILABLE, None)
        assert server.alive
        assert predict(server, photo_request(photo, DEMO)).code == OK


def _serve_fails(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ovms_rs",
            "serve",
            "--port",
            str(free_port()),
            "--grpc_bind_address",
            "127.0.0.1",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_without_proxy(),
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--grpc_tls_cert", "{cert}"], "--grpc_tls_cert and --grpc_tls_key go together"),
        (["--grpc_tls_key", "{key}"], "--grpc_tls_cert and --grpc_tls_key go together"),
        (
            ["--grpc_tls_client_ca", "{ca}"],
            "--grpc_tls_client_ca needs --grpc_tls_cert and --grpc_tls_key",
        ),
        (
            ["--grpc_tls_cert", "{cert}", "--grpc_tls_key", "/nonexistent/key.pem"],
            "Cannot read TLS file",
        ),
        (
            ["--grpc_tls_cert", "{garbage}", "--grpc_tls_key", "{key}"],
            "Unusable TLS files (--grpc_tls_cert {garbage}, --grpc_tls_key {key}): "
            "the certificate file holds no PEM certificate",
        ),
        (
            ["--grpc_tls_cert", "{key}", "--grpc_tls_key", "{cert}"],
            "the certificate file holds no PEM certificate",
        ),
        (
            ["--grpc_tls_cert", "{cert}", "--grpc_tls_key", "{garbage}"],
            "the certificate and key are not usable: ",
        ),
        (
            ["--grpc_tls_cert", "{cert}", "--grpc_tls_key", "{rogue_key}"],
            "the certificate and key are not usable: ",
        ),
        (
            [
                "--grpc_tls_cert",
                "{cert}",
                "--grpc_tls_key",
                "{key}",
                "--grpc_tls_client_ca",
                "{garbage}",
            ],
            "the client CA file holds no PEM certificate",
        ),
        (
            [
                "--grpc_transport",
                "grpcio",
                "--grpc_tls_cert",
                "{garbage}",
                "--grpc_tls_key",
                "{key}",
            ],
            "Unusable TLS files (--grpc_tls_cert {garbage}, --grpc_tls_key {key}): grpcio cannot use them",
        ),
    ],
    ids=[
        "cert-only",
        "key-only",
        "ca-only",
        "missing-key-file",
        "garbage-cert",
        "swapped-cert-and-key",
        "garbage-key",
        "key-of-another-certificate",
        "garbage-client-ca",
        "grpcio-garbage-cert",
    ],
)
def test_bad_tls_flags_stop_start_up(
    tls_files: TlsFiles, tmp_path: Path, flags: list[str], message: str
) -> None:
    """Bad TLS flags or files stop start-up with a one-line error (exit status 1, no traceback)."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a PEM file\n")
    paths = {
        "cert": tls_files.server_cert,
        "key": tls_files.server_key,
        "ca": tls_files.ca,
        "rogue_key": tls_files.rogue_client_key,
        "garbage": garbage,
    }
    result = _serve_fails(*[f.format(**paths) for f in flags])
    assert result.returncode == 1, result.stderr
    assert message.format(**paths) in result.stderr
    assert "Traceback" not in result.stderr


def test_bind_address_is_honoured(server_log: Path) -> None:
    """--grpc_bind_address 127.0.0.1 listens there only (not on every interface)."""
    with ServerProcess(log_path=server_log) as server:
        assert listening_addresses(server.port) == ["127.0.0.1"]


def test_bind_address_default_is_documented() -> None:
    """The default is 0.0.0.0, as OVMS (servers in these tests always pass 127.0.0.1)."""
    result = subprocess.run(
        [sys.executable, "-m", "ovms_rs", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_without_proxy(),
    )
    assert result.returncode == 0
    assert "--grpc_bind_address" in result.stdout and "0.0.0.0" in result.stdout
