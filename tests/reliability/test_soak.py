"""Soak: 8 concurrent clients mixing valid, invalid and binary requests for a bounded time.

Every reply is checked: valid photos must get their class, invalid requests their exact code and
details. Afterwards: zero unexpected answers, and the servers' RSS, threads and open files stable.

CI runs 15 s; the full run (figures in RELIABILITY.md):
    OVMS_RS_SOAK_SECONDS=60 pytest tests/reliability/test_soak.py -s
OVMS_RS_SOAK_REPORT=path.json also writes the figures as JSON.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from helpers import DEMO, MAX_MESSAGE, ServerProcess, predict_request, tensor_proto
from ovms_rs import _native
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2
from reliability_support import Photo, binary_proto, env_int, photo_request, proc_status

SOAK_SECONDS = env_int("OVMS_RS_SOAK_SECONDS", 15)
CLIENTS = 8
# RSS is compared between the end of the warm-up and the end of the run.
WARMUP_SECONDS = max(2.0, min(10.0, SOAK_SECONDS / 5))
# Allowed RSS growth after warm-up. Measured (60 s, ~7800 requests, 2 CPUs): RSS at the end within
# -10..+1 MB of the post-warm-up figure (~175 MB), peaks at most +8 MB above it (malloc arenas settling).
# 24 MB is three times that swing, and catches a leak of 12 KB per request in the 15 s CI run (~2000
# requests) or 3 KB per request in the 60 s run; a leaked request tensor is 600 KB.
RSS_GROWTH_LIMIT_MB = 24.0
# grpcio's handler pool grows on demand (up to 64 threads): allow more threads, but not per request.
THREAD_GROWTH_LIMIT = 24
FD_GROWTH_LIMIT = 8
CALL_TIMEOUT = 60.0

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@dataclass(frozen=True)
class Case:
    """One kind of request and the answer it must get."""

    kind: str
    server: str  # "nchw" (demo_server) or "nhwc" (nhwc_server)
    request: predict_pb2.PredictRequest | bytes
    code: grpc.StatusCode = OK
    details: str = ""  # exact, or a prefix when it ends with "..."
    label: int | None = None

    def accepts(self, code: grpc.StatusCode, details: str) -> bool:
        if code != self.code:
            return False
        if self.details.endswith("..."):
            return details.startswith(self.details[:-3])
        return code == OK or details == self.details


def invalid_cases(photo: Photo, binary: bool) -> list[Case]:
    nchw = photo.nchw
    wrong_shape = np.zeros((1, 3, 224, 225), np.float32)
    cases = [
        Case(
            "invalid",
            "nchw",
            photo_request(photo, "resnet"),
            NOT_FOUND,
            "Model with requested name is not found",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({"data": tensor_proto(nchw)}, version=7),
            NOT_FOUND,
            "Model with requested version is not found",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({"input": tensor_proto(nchw)}),
            INVALID,
            "Missing input with specific name - Required input: data",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({}),
            INVALID,
            "Invalid number of inputs - Expected: 1; Actual: 0",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({"data": tensor_proto(wrong_shape)}),
            INVALID,
            "Invalid input shape - Expected: (1,3,224,224); Actual: (1,3,224,225); input name: data",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({"data": tensor_proto(nchw.astype(np.int32))}),
            INVALID,
            "Invalid input precision - Expected: FP32; Actual: I32; input name: data",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({"data": tensor_proto(nchw[:, :, :100])}),
            INVALID,
            "Invalid input shape - Expected: (1,3,224,224); Actual: (1,3,100,224); input name: data",
        ),
        Case(
            "invalid",
            "nchw",
            _short_content(nchw),
            INVALID,
            "Invalid content size of tensor proto - Expected: 602112 bytes; Actual: 1024 bytes; input name: data",
        ),
        Case(
            "invalid",
            "nchw",
            predict_request({"data": tensor_proto(nchw)}, output_filter=["nope"]),
            INVALID,
            "Invalid output name in output_filter...",
        ),
        Case("invalid", "nchw", bytes(range(256)) * 8, INVALID, "Invalid message structure - ..."),
        Case(
            "invalid",
            "nchw",
            predict_request({"data": binary_proto([photo.jpeg])}),
            INVALID,
            "Received binary image input but resource not configured to accept NHWC layout",
        ),
    ]
    if binary:
        cases += [
            Case(
                "invalid",
                "nhwc",
                predict_request({"data": binary_proto([photo.jpeg[: len(photo.jpeg) // 50]])}),
                INVALID,
                "Image parsing failed",
            ),
            Case(
                "invalid",
                "nhwc",
                predict_request({"data": binary_proto([b"not an image"])}),
                INVALID,
                "Image parsing failed",
            ),
            Case(
                "invalid",
                "nhwc",
                predict_request({"data": binary_proto([b""])}),
                INVALID,
                "String val is empty",
            ),
            Case(
                "invalid",
                "nhwc",
                predict_request({"data": binary_proto([photo.jpeg], dim0=2)}),
                INVALID,
                "Invalid input batch size - Expected: 2; Actual: 1; input name: data",
            ),
        ]
    return cases


def _short_content(nchw: np.ndarray[Any, Any]) -> predict_pb2.PredictRequest:
    req = predict_request({"data": tensor_proto(nchw)})
    req.inputs["data"].tensor_content = req.inputs["data"].tensor_content[:1024]
    return req


def valid_cases(photos: tuple[Photo, ...], binary: bool) -> list[Case]:
    cases = [Case("float", "nchw", photo_request(p, DEMO), label=p.label) for p in photos]
    cases += [
        Case("float-nhwc", "nhwc", photo_request(p, DEMO, nhwc=True), label=p.label) for p in photos
    ]
    if binary:
        cases += [
            Case("binary", "nhwc", predict_request({"data": binary_proto([p.jpeg])}), label=p.label)
            for p in photos
        ]
    return cases


def binary_decoding_available(photo: Photo) -> bool:
    try:
        _native.decode_images([photo.jpeg], 224, 224)
    except NotImplementedError:
        return False
    return True


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_code: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    unexpected_by: Counter[str] = field(default_factory=Counter)
    unexpected_count: int = 0

    def record(
        self, case: Case, code: grpc.StatusCode, problem: str | None, grpc_deadline: float | None
    ) -> None:
        with self.lock:
            self.by_kind[case.kind] += 1
            self.by_code[code.name] += 1
            if problem is not None:
                self.unexpected_count += 1
                deadline = "no deadline" if grpc_deadline is None else "deadline"
                self.unexpected_by[f"{case.kind} ({deadline}): {code.name}"] += 1
                if len(self.unexpected) < 20:
                    self.unexpected.append(f"{problem} ({deadline})")


def client(
    stubs: dict[str, Any],
    valid: list[Case],
    invalid: list[Case],
    seed: int,
    deadline: float,
    tally: Tally,
) -> None:
    """One client: 35% invalid requests, the rest valid ones. Even-numbered clients set no gRPC deadline
    (grpc's default, and many clients'), odd ones a 60 s deadline."""
    rng = random.Random(seed)
    grpc_deadline = None if seed % 2 == 0 else CALL_TIMEOUT
    while time.monotonic() < deadline:
        case = rng.choice(invalid) if rng.random() < 0.35 else rng.choice(valid)
        code, details, reply = call(stubs[case.server], case.request, grpc_deadline)
        problem = None
        if not case.accepts(code, details):
            problem = f"{case.kind} on {case.server}: got {code.name} {details!r}, want {case.code.name} {case.details!r}"
        elif case.label is not None:
            assert reply is not None
            top = int(np.frombuffer(reply.outputs["prob"].tensor_content, np.float32).argmax())
            if top != case.label:
                problem = f"{case.kind} on {case.server}: class {top}, want {case.label}"
        tally.record(case, code, problem, grpc_deadline)


def call(
    stub: Any, request: predict_pb2.PredictRequest | bytes, grpc_deadline: float | None
) -> tuple[grpc.StatusCode, str, Any]:
    """One Predict; the client gives up waiting after CALL_TIMEOUT even without a gRPC deadline."""
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    future = stub.future(payload, timeout=grpc_deadline)
    try:
        raw = future.result(timeout=CALL_TIMEOUT + 5)
    except grpc.FutureTimeoutError:
        future.cancel()
        return grpc.StatusCode.UNKNOWN, f"no answer in {CALL_TIMEOUT + 5} s (client gave up)", None
    except grpc.RpcError as e:
        return e.code(), e.details() or "", None
    return OK, "", predict_pb2.PredictResponse.FromString(raw)


def raw_predict(channel: grpc.Channel) -> Any:
    return channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=None,
        response_deserializer=None,
    )


def test_soak(
    demo_server: ServerProcess,
    nhwc_server: ServerProcess,
    demo_photos: tuple[Photo, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    binary = binary_decoding_available(demo_photos[0])
    valid = valid_cases(demo_photos, binary)
    invalid = invalid_cases(demo_photos[3], binary)
    servers = {"nchw": demo_server, "nhwc": nhwc_server}
    # A local subchannel pool: each client gets its own connection instead of sharing one.
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    # Each client has its own channels (connections), as separate client processes would.
    channels = [
        {
            name: grpc.insecure_channel(f"127.0.0.1:{s.port}", options=options)
            for name, s in servers.items()
        }
        for _ in range(CLIENTS)
    ]
    tally = Tally()
    samples: dict[str, list[tuple[float, dict[str, int]]]] = {name: [] for name in servers}
    start = time.monotonic()
    deadline = start + SOAK_SECONDS
    threads = [
        threading.Thread(
            target=client,
            name=f"soak-client-{i}",
            daemon=True,
            args=(
                {n: raw_predict(c) for n, c in channels[i].items()},
                valid,
                invalid,
                i,
                deadline,
                tally,
            ),
        )
        for i in range(CLIENTS)
    ]
    try:
        for t in threads:
            t.start()
        baseline: dict[str, dict[str, int]] = {}
        while any(t.is_alive() for t in threads):
            now = time.monotonic() - start
            for name, server in servers.items():
                assert server.proc is not None
                figures = proc_status(server.proc.pid)
                samples[name].append((now, figures))
                if name not in baseline and now >= WARMUP_SECONDS:
                    baseline[name] = figures
            time.sleep(0.5)
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a soak client hung"
    finally:
        for chans in channels:
            for c in chans.values():
                c.close()
    time.sleep(0.5)  # let the server release the closed connections' files
    end = {}
    for name, server in servers.items():
        assert server.alive, server.log()[-3000:]
        assert server.proc is not None
        end[name] = proc_status(server.proc.pid)
    report = {
        "seconds": SOAK_SECONDS,
        "clients": CLIENTS,
        "binary": binary,
        "requests": sum(tally.by_kind.values()),
        "by_kind": dict(sorted(tally.by_kind.items())),
        "by_code": dict(sorted(tally.by_code.items())),
        "unexpected": tally.unexpected_count,
        "unexpected_by": dict(sorted(tally.unexpected_by.items())),
        "servers": {
            name: {
                "rss_mb_after_warmup": round(
                    baseline.get(name, samples[name][0][1])["VmRSS"] / 1024, 1
                ),
                "rss_mb_end": round(end[name]["VmRSS"] / 1024, 1),
                "rss_mb_max": round(max(f["VmRSS"] for _, f in samples[name]) / 1024, 1),
                "threads": [
                    baseline.get(name, samples[name][0][1])["Threads"],
                    end[name]["Threads"],
                ],
                "fds": [baseline.get(name, samples[name][0][1])["fds"], end[name]["fds"]],
            }
            for name in servers
        },
    }
    with capsys.disabled():
        print("\nsoak:", json.dumps(report, indent=1))
    if os.environ.get("OVMS_RS_SOAK_REPORT"):
        Path(os.environ["OVMS_RS_SOAK_REPORT"]).write_text(json.dumps(report, indent=1))

    assert tally.unexpected_count == 0, "\n".join(tally.unexpected)
    assert tally.by_kind["float"] > 0 and tally.by_kind["invalid"] > 0
    assert not binary or tally.by_kind["binary"] > 0
    for name in servers:
        first = baseline.get(name, samples[name][0][1])
        growth_mb = (end[name]["VmRSS"] - first["VmRSS"]) / 1024
        assert growth_mb < RSS_GROWTH_LIMIT_MB, f"{name}: RSS grew {growth_mb:.1f} MB after warm-up"
        assert end[name]["Threads"] - first["Threads"] <= THREAD_GROWTH_LIMIT, (
            name,
            first,
            end[name],
        )
        assert end[name]["fds"] - first["fds"] <= FD_GROWTH_LIMIT, (name, first, end[name])
