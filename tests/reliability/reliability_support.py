"""Shared pieces of the reliability suites: the demo photos in every form the servers take, calls that
return their status instead of raising, process figures (RSS, threads, fds) and bounded-run settings."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from helpers import (
    DEMO_MODEL_PATH,
    MAX_MESSAGE,
    ServerProcess,
    labeled_photos,
    output_array,
    photo_nchw,
    predict_request,
    tensor_proto,
)
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2

PREDICT = "/tensorflow.serving.PredictionService/Predict"
DT_STRING = 7

# Codes a Predict may end with for a request that is wrong (COMPAT.md): never UNKNOWN or INTERNAL.
CLIENT_ERROR_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND})


# Tests that need minutes (longer than CI allows) run only with OVMS_RS_LONG=1.
LONG_RUN = os.environ.get("OVMS_RS_LONG", "") not in ("", "0")


def env_int(name: str, default: int) -> int:
    """A bound for a CI-sized run that a longer run raises through the environment."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Photo:
    """One labeled demo photo as each server takes it."""

    name: str
    label: int
    jpeg: bytes
    nchw: np.ndarray[Any, Any]  # [1,3,224,224] float32 BGR 0..255

    @property
    def nhwc(self) -> np.ndarray[Any, Any]:
        return np.ascontiguousarray(self.nchw.transpose(0, 2, 3, 1))


@functools.lru_cache(maxsize=1)
def photos() -> tuple[Photo, ...]:
    return tuple(
        Photo(path.name, label, path.read_bytes(), photo_nchw(path))
        for path, label in labeled_photos()
    )


def binary_proto(images: list[bytes], dim0: int | None = None) -> tensor_pb2.TensorProto:
    """JPEG/PNG bytes in string_val with tensor_shape [N], as OVMS's binary clients send them."""
    return tensor_pb2.TensorProto(
        dtype=DT_STRING,  # type: ignore[arg-type]
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(images) if dim0 is None else dim0)]
        ),
        string_val=images,
    )


@dataclass
class Outcome:
    """How one call ended: the status code and details, and the reply when it is OK."""

    code: grpc.StatusCode
    details: str
    reply: predict_pb2.PredictResponse | None = None

    def top_classes(self, output: str = "prob") -> list[int]:
        assert self.reply is not None, f"no reply: {self.code.name} {self.details}"
        return [int(c) for c in output_array(self.reply.outputs[output]).argmax(axis=-1).ravel()]


def _outcome_of(call: Callable[[], Any]) -> Outcome:
    try:
        reply = call()
    except grpc.RpcError as e:
        return Outcome(e.code(), e.details() or "")
    if isinstance(reply, bytes):
        reply = predict_pb2.PredictResponse.FromString(reply)
    return Outcome(grpc.StatusCode.OK, "", reply)


def predict(
    server: ServerProcess, request: predict_pb2.PredictRequest, timeout: float = 30.0
) -> Outcome:
    return _outcome_of(lambda: server.prediction_stub().Predict(request, timeout=timeout))


def predict_bytes(server: ServerProcess, payload: bytes, timeout: float = 30.0) -> Outcome:
    """Predict with a payload sent as it is, for bytes the protobuf stubs would not produce."""
    assert server.channel is not None
    call = server.channel.unary_unary(PREDICT, request_serializer=None, response_deserializer=None)
    return _outcome_of(lambda: call(payload, timeout=timeout))


def photo_request(photo: Photo, model: str, nhwc: bool = False) -> predict_pb2.PredictRequest:
    return predict_request({"data": tensor_proto(photo.nhwc if nhwc else photo.nchw)}, model=model)


def assert_classifies(server: ServerProcess, model: str, photo: Photo | None = None) -> None:
    """The server is up and gets a real photo right (NCHW float input `data`)."""
    assert server.alive, f"server exited: {server.log()[-2000:]}"
    photo = photo or photos()[0]
    outcome = predict(server, photo_request(photo, model))
    assert outcome.code == grpc.StatusCode.OK, (outcome.code, outcome.details)
    assert outcome.top_classes() == [photo.label]


# ---- the server process, seen from outside ----


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB), VmHWM (kB), Threads from /proc/<pid>/status, and the number of open fds."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            figures[key] = int(value.split()[0])
    figures["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return figures


def rss_mb(pid: int) -> float:
    return proc_status(pid)["VmRSS"] / 1024


class PeakRss:
    """Samples a process's RSS every few milliseconds in a thread; `peak_mb` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def listening_addresses(port: int) -> list[str]:
    """Local addresses with a TCP socket in LISTEN state on `port` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = TCP_LISTEN
                found.append(_address_of(address))
    return found


def _address_of(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    # IPv6: four 32-bit words, each in host (little-endian) order; IPv4-mapped ones read as IPv4.
    address = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
    return str(address.ipv4_mapped or address)


# ---- servers the reliability tests start themselves ----

# The demo model with batch 16 and one infer request: ~150-300 ms per request on a small CPU, so that
# requests are reliably in flight, or waiting for the infer request, when a test acts.
SLOW_MODEL = "slow"
SLOW_BATCH = 16


def slow_server(log: Path | None, *extra: str) -> ServerProcess:
    return ServerProcess(
        "--model_name",
        SLOW_MODEL,
        "--model_path",
        str(DEMO_MODEL_PATH),
        "--batch_size",
        str(SLOW_BATCH),
        "--nireq",
        "1",
        *extra,
        log_path=log,
    )


def slow_request(photo: Photo) -> predict_pb2.PredictRequest:
    """A batch of SLOW_BATCH copies of one photo for the slow server; every top class is the photo's."""
    batch = np.repeat(photo.nchw, SLOW_BATCH, axis=0)
    return predict_request({"data": tensor_proto(batch)}, model=SLOW_MODEL)


class SecureServerProcess(ServerProcess):
    """A ServerProcess whose client channel speaks TLS."""

    def __init__(
        self, *args: str, credentials: grpc.ChannelCredentials, log_path: Path | None = None
    ) -> None:
        super().__init__(*args, log_path=log_path)
        self.credentials = credentials

    def connect(self) -> grpc.Channel:
        return secure_channel(self.port, self.credentials)


def secure_channel(port: int, credentials: grpc.ChannelCredentials) -> grpc.Channel:
    return grpc.secure_channel(
        f"127.0.0.1:{port}",
        credentials,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            # The certificates name `localhost`; the tests dial 127.0.0.1.
            ("grpc.ssl_target_name_override", "localhost"),
        ],
    )


def sigterm_and_wait(server: ServerProcess, timeout: float) -> int:
    """Sends SIGTERM to a server this test started and waits for its exit status."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(timeout=timeout)


# ---- TLS material ----


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: a CA, a server certificate it signed (localhost, 127.0.0.1), a client certificate it
    signed, and a client certificate signed by another CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def make_tls_files(out: Path) -> TlsFiles:
    """Generates the TLS material into `out` (needs the `cryptography` package)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
        ca: bool = False,
        server: bool = False,
    ) -> x509.Certificate:
        issuer_name, issuer_key = issuer or (name(subject), key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        elif server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    def write(
        stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> tuple[Path, Path]:
        cert_path, key_path = out / f"{stem}.pem", out / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    def new_key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    ca_key, rogue_ca_key = new_key(), new_key()
    ca = issue("ovms_rs test CA", ca_key, None, ca=True)
    rogue_ca = issue("rogue CA", rogue_ca_key, None, ca=True)
    ca_path, _ = write("ca", ca, ca_key)
    server_key = new_key()
    server_cert, server_key_path = write(
        "server", issue("localhost", server_key, (ca.subject, ca_key), server=True), server_key
    )
    client_key = new_key()
    client_cert, client_key_path = write(
        "client", issue("client", client_key, (ca.subject, ca_key)), client_key
    )
    rogue_key = new_key()
    rogue_cert, rogue_key_path = write(
        "rogue", issue("rogue client", rogue_key, (rogue_ca.subject, rogue_ca_key)), rogue_key
    )
    return TlsFiles(
        ca_path,
        server_cert,
        server_key_path,
        client_cert,
        client_key_path,
        rogue_cert,
        rogue_key_path,
    )
