"""Generated PredictRequests against live servers: every reply is the right result or the right error.

Each request is answered either OK (only when it was valid; a real photo must then get its class) or with
the code and OVMS base message the oracle (predict_fuzzing.expected) derives from the documented checks;
never UNKNOWN, INTERNAL or a dropped connection. Afterwards the server still classifies every photo.

CI-sized by default (derandomized, a fixed number of examples); a longer run:
    OVMS_RS_FUZZ_EXAMPLES=3000 pytest tests/reliability/test_fuzz_live.py
and OVMS_RS_FUZZ_SEED=<n> for another sequence than the derandomized one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from helpers import DEMO, ServerProcess
from hypothesis import given
from hypothesis import strategies as st
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2
from predict_fuzzing import (
    INVALID,
    MUTATIONS,
    NCHW,
    NHWC,
    NOT_FOUND,
    OK,
    Expected,
    expected,
    fuzz_settings,
    maybe_seeded,
    mutate,
    predict_requests,
)
from reliability_support import Outcome, Photo, assert_classifies, photo_request, predict_bytes

EXAMPLES_ENV = "OVMS_RS_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 150


class Shown:
    """A request with a short repr, so a falsifying example prints as a summary, not megabytes."""

    def __init__(self, request: predict_pb2.PredictRequest) -> None:
        self.request = request

    def __repr__(self) -> str:
        return describe(self.request)


def describe(req: predict_pb2.PredictRequest) -> str:
    spec = req.model_spec
    version = spec.version.value if spec.HasField("version") else None
    inputs = {
        name: dict(
            dtype=t.dtype,
            shape=[d.size for d in t.tensor_shape.dim],
            content=len(t.tensor_content),
            float_val=len(t.float_val),
            strings=[len(s) for s in t.string_val],
            other_vals={
                f.name: len(v)
                for f, v in t.ListFields()
                if f.name.endswith("_val") and f.name not in ("float_val", "string_val")
            },
        )
        for name, t in req.inputs.items()
    }
    return f"PredictRequest(model={spec.name!r}, version={version}, inputs={inputs}, output_filter={list(req.output_filter)})"


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[str]]:
    """Codes seen by this module's fuzz tests, printed at the end for RELIABILITY.md."""
    seen: Counter[str] = Counter()
    yield seen
    print(f"\nlive fuzz: {sum(seen.values())} requests, by outcome: {dict(sorted(seen.items()))}")


@pytest.fixture(scope="module")
def log_marks(demo_server: ServerProcess, nhwc_server: ServerProcess) -> dict[int, int]:
    """How long each server's log was before this module's requests (by port)."""
    return {server.port: len(server.log()) for server in (demo_server, nhwc_server)}


def check(
    server: ServerProcess, req: predict_pb2.PredictRequest, want: Expected, got: Outcome
) -> None:
    assert server.alive, f"server died on {describe(req)}: {server.log()[-3000:]}"
    assert want.accepts(got.code, got.details), (
        f"{describe(req)}\n  got {got.code.name}: {got.details!r}\n  want {want}"
    )
    if got.code == OK:
        assert got.reply is not None
        assert got.reply.model_spec.name == DEMO
        assert got.reply.model_spec.version.value == 1
        assert list(got.reply.outputs) == ["prob"]
        assert [d.size for d in got.reply.outputs["prob"].tensor_shape.dim] == [1, 1000]
        if want.label is not None:
            assert got.top_classes() == [want.label], describe(req)


def _run(
    server: ServerProcess, shown: Shown, shape: tuple[int, ...], binary: bool, tally: Counter[str]
) -> None:
    req = shown.request
    got = predict_bytes(server, req.SerializeToString(), timeout=60)
    tally[got.code.name] += 1
    check(server, req, expected(req, shape, binary), got)


@maybe_seeded
@fuzz_settings(EXAMPLES_ENV, DEFAULT_EXAMPLES)
@given(shown=predict_requests(NCHW).map(Shown))
def test_generated_requests_nchw(
    demo_server: ServerProcess, shown: Shown, tally: Counter[str], log_marks: dict[int, int]
) -> None:
    _run(demo_server, shown, NCHW, False, tally)


@maybe_seeded
@fuzz_settings(EXAMPLES_ENV, DEFAULT_EXAMPLES)
@given(shown=predict_requests(NHWC, binary=True).map(Shown))
def test_generated_requests_nhwc_and_binary(
    nhwc_server: ServerProcess, shown: Shown, tally: Counter[str]
) -> None:
    _run(nhwc_server, shown, NHWC, True, tally)


def _mutated_payloads() -> st.SearchStrategy[tuple[Shown, bytes]]:
    bases = st.one_of(
        predict_requests(NCHW, small=True),
        predict_requests(NCHW).filter(lambda r: r.ByteSize() < 2**20),
    )
    return st.tuples(bases.map(Shown), MUTATIONS).map(
        lambda t: (t[0], mutate(t[0].request.SerializeToString(), t[1]))
    )


@maybe_seeded
@fuzz_settings(EXAMPLES_ENV, DEFAULT_EXAMPLES)
@given(case=_mutated_payloads())
def test_mutated_request_bytes(
    demo_server: ServerProcess, case: tuple[Shown, bytes], tally: Counter[str]
) -> None:
    """Serialized requests with bytes flipped, inserted, deleted, duplicated or cut: answered OK, INVALID_ARGUMENT
    or NOT_FOUND. Where protobuf itself parses the bytes without unknown fields, the answer must be the
    oracle's for what it parsed, except that the server may reject wire-format oddities protobuf
    tolerates (INVALID_ARGUMENT `Invalid message structure`)."""
    _, payload = case
    got = predict_bytes(demo_server, payload, timeout=60)
    tally[f"mutated:{got.code.name}"] += 1
    assert demo_server.alive, demo_server.log()[-3000:]
    assert got.code in (OK, INVALID, NOT_FOUND), (got.code, got.details)
    try:
        parsed = predict_pb2.PredictRequest.FromString(payload)
    except (
        Exception
    ):  # not a PredictRequest to protobuf either (e.g. invalid UTF-8 in a string field)
        return
    if got.code == INVALID and got.details.startswith("Invalid message structure"):
        tally["mutated:stricter-than-protobuf"] += 1
        return
    known_only = predict_pb2.PredictRequest()
    known_only.CopyFrom(parsed)
    known_only.DiscardUnknownFields()
    if known_only.ByteSize() != parsed.ByteSize():
        # Unknown fields inside a map entry: Python's upb keeps the whole entry as an unknown field of
        # the request (no input), C++ protobuf (OVMS) and the server keep the entry. No one answer.
        tally["mutated:unknown-fields"] += 1
        return
    check(demo_server, parsed, expected(parsed, NCHW, False), got)


def test_servers_still_classify_every_photo(
    demo_server: ServerProcess,
    nhwc_server: ServerProcess,
    demo_photos: tuple[Photo, ...],
    log_marks: dict[int, int],
) -> None:
    """Runs after the fuzz tests above (same module, same servers); nothing they sent was an internal
    error in the server's log either."""
    for photo in demo_photos:
        assert_classifies(demo_server, DEMO, photo)
        got = predict_bytes(nhwc_server, photo_request(photo, DEMO, nhwc=True).SerializeToString())
        assert got.code == grpc.StatusCode.OK and got.top_classes() == [photo.label]
    for server in (demo_server, nhwc_server):
        new_lines = server.log()[log_marks[server.port] :]
        assert "Unexpected error" not in new_lines, new_lines[-5000:]


@pytest.mark.parametrize("dims", [[0, 2**40, 2**40], [1, 3, 0, 2**62], [0, 2**63 - 1]])
def test_zero_dim_beside_huge_dims(demo_server: ServerProcess, dims: list[int]) -> None:
    """Found by test_fuzz_parser: the element count is 0, but no array of that shape can exist."""
    req = predict_pb2.PredictRequest()
    req.model_spec.name = DEMO
    tensor = req.inputs["data"]
    tensor.dtype = 1
    for d in dims:
        tensor.tensor_shape.dim.add(size=d)
    got = predict_bytes(demo_server, req.SerializeToString())
    shape = "(" + ",".join(map(str, dims)) + ")"
    assert (got.code, got.details) == (
        INVALID,
        f"Invalid input shape - Negative or zero dimension size is not acceptable: {shape}; input name: data",
    )
