"""The one catalogue of refusals (`ovms_rs.errors`): every kind Rust reports has an entry, and the
messages made from kinds are OVMS's, byte for byte (COMPAT.md)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from helpers import predict_request, tensor_proto
from ovms_rs import _native, errors
from ovms_rs.server.errors import status_of


def test_every_rust_kind_has_a_catalogue_entry() -> None:
    kinds = _native.invalid_input_kinds()
    assert len(kinds) == len(set(kinds)) > 10
    assert set(kinds) <= set(errors.REQUEST_ERRORS)
    # Every entry formats with the fields its kind has (no KeyError at the worst moment).
    for kind, case in errors.REQUEST_ERRORS.items():
        fields = {
            name: 1
            for name in (
                "name",
                "shape",
                "expected",
                "actual",
                "detail",
                "reason",
                "known",
                "rank",
                "to",
                "dtype",
            )
        }
        assert errors.request_error(kind, fields).code == case.code


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        (
            "CONTENT_SIZE",
            {"name": "data", "expected": 602112, "actual": 0},
            "Invalid content size of tensor proto - Expected: 602112 bytes; Actual: 0 bytes; input name: data",
        ),
        (
            "VALUE_COUNT",
            {"name": "x", "expected": 4, "actual": 3},
            "Invalid number of values in tensor proto container - Expected: 4; Actual: 3; input name: x",
        ),
        (
            "ZERO_DIMENSION",
            {"name": "x", "shape": (1, 3, 0, 224)},
            "Invalid input shape - Negative or zero dimension size is not acceptable: (1,3,0,224); input name: x",
        ),
        ("IMAGE_EMPTY", {}, "String val is empty"),
        (
            "MALFORMED_REQUEST",
            {"detail": "truncated varint"},
            "Invalid message structure - truncated varint",
        ),
    ],
)
def test_kinds_format_as_ovms_words_them(
    kind: str, fields: dict[str, object], message: str
) -> None:
    case = errors.request_error(kind, fields)
    assert (case.code, case.message, case.http_status) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        400,
    )


def test_a_deferred_rust_kind_carries_its_fields() -> None:
    t = tensor_proto(np.zeros((1, 2), np.float32))
    t.tensor_content = b"\x00" * 4
    _, _, _, inputs, _ = _native.parse_predict_request(
        predict_request({"x": t}).SerializeToString()
    )
    error = inputs["x"].error
    assert error == ("CONTENT_SIZE", {"name": "x", "expected": 8, "actual": 4})
    assert errors.request_error(*error).message == (
        "Invalid content size of tensor proto - Expected: 8 bytes; Actual: 4 bytes; input name: x"
    )


def test_an_immediate_rust_kind_is_an_exception_whose_str_is_the_message() -> None:
    with pytest.raises(_native.InvalidInput) as info:
        _native.parse_predict_request(b"\xff\xff\xff")
    kind, fields = info.value.args
    assert kind == "MALFORMED_REQUEST" and isinstance(fields["detail"], str)
    assert str(info.value) == f"Invalid message structure - {fields['detail']}"
    assert status_of(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, str(info.value))
