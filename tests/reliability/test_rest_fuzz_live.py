"""Generated REST predict bodies against a live server: every answer is the right result (only for a valid
body) or a 4xx `{"error"}` whose message is one of the catalogue's; never a 5xx, a hang or a dropped
connection. Afterwards the server still answers correctly.

CI-sized (derandomized, a fixed number of examples); longer: OVMS_RS_FUZZ_EXAMPLES=3000.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from helpers import ServerProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_repo import tiny_repo
from ovms_rs import errors
from reliability_support import env_int

EXAMPLES = env_int("OVMS_RS_FUZZ_EXAMPLES", 150)
# Every base message a REST predict may answer a client's mistake with.
CLIENT_MESSAGES = {message for _, message in errors.JSON_ERRORS.values()} | {
    getattr(errors, name)
    for name in dir(errors)
    if name.isupper() and isinstance(getattr(errors, name), str)
}

scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.builds(lambda b: {"b64": base64.b64encode(b).decode()}, st.binary(max_size=8)),
    st.just({"b64": "%%"}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from(["x", "b64", "y", ""]), inner, max_size=3),
    ),
    max_leaves=20,
)
# Mostly the shapes a client gets nearly right ([1,4] for input x), then anything.
numbers = st.one_of(st.integers(-5, 5), st.floats(-1e6, 1e6))
near = st.lists(
    st.one_of(st.lists(numbers, min_size=4, max_size=4), st.lists(numbers, min_size=3, max_size=5)),
    min_size=1,
    max_size=2,
)
bodies = st.one_of(
    st.builds(lambda v: {"instances": v}, st.one_of(near, values)),
    st.builds(lambda v: {"inputs": v}, st.one_of(near, values)),
    st.builds(lambda v: {"inputs": {"x": v}}, st.one_of(near, values)),
    st.builds(lambda v: {"instances": [{"x": r} for r in v]}, near),
    st.dictionaries(
        st.sampled_from(["instances", "inputs", "signature_name", "other"]), values, max_size=3
    ),
    values,
)
whole = st.builds(lambda b: json.dumps(b).encode(), bodies)
raw = st.one_of(
    whole,
    whole,
    whole,
    st.builds(lambda b, cut: json.dumps(b).encode()[:cut], bodies, st.integers(0, 40)),
    st.binary(max_size=64),
)


@pytest.fixture(scope="module")
def tiny_rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = Path(tmp_path_factory.mktemp("rest_fuzz"))
    repo = tiny_repo(root / "tiny", [2])  # y = 2 * x, x [1,4] f32
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), log_path=root / "server.log", rest=True
    ) as server:
        yield server


def _expected_ok(body: bytes) -> Any:
    """The predictions/outputs a body must get if it is a valid [1,4] request, else None."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or ("instances" in doc) == ("inputs" in doc):
        return None
    return doc


@settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(body=raw)
def test_rest_fuzz(tiny_rest_server: ServerProcess, body: bytes) -> None:
    reply = requests.post(
        f"{tiny_rest_server.rest_url}/v1/models/tiny:predict", data=body, timeout=30
    )
    assert reply.status_code in (200, 400), (reply.status_code, reply.text, body[:200])
    answer = reply.json()
    if reply.status_code == 400:
        message = answer["error"].split(" - ")[0]
        assert message in CLIENT_MESSAGES, (answer, body[:200])
        return
    doc = _expected_ok(body)
    assert doc is not None, body[:200]
    if "instances" in doc:
        sent = doc["instances"]
        sent = [row["x"] for row in sent] if sent and isinstance(sent[0], dict) else sent
        got = answer["predictions"]
    else:
        sent = doc["inputs"]["x"] if isinstance(doc["inputs"], dict) else doc["inputs"]
        got = answer["outputs"]
    # The only valid shape is [1,4]; the model computes 2 * x in f32.
    assert len(got) == 1 and len(got[0]) == 4
    # Compared as float32: the reply writes each f32 as its shortest text ("3.8007812"), which reads
    # back as a float64 other than the f32's exact value (3.80078125).
    expected = np.float32(2.0) * np.asarray(sent[0], dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(got[0], dtype=np.float32), expected, err_msg=str(sent))


def test_still_serving_after_fuzz(tiny_rest_server: ServerProcess) -> None:
    reply = requests.post(
        f"{tiny_rest_server.rest_url}/v1/models/tiny:predict",
        json={"instances": [[1, 2, 3, 4]]},
        timeout=30,
    )
    assert reply.json() == {"predictions": [[2.0, 4.0, 6.0, 8.0]]}
