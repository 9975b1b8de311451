"""Domain errors: each carries the gRPC status code and OVMS's details string.

Everything the server rejects is raised as a `ServingError`; `ovms_rs.server.errors.abort_with` is the one
place that turns it into a gRPC status for every servicer.
"""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """A request the server answers with a non-OK gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str, detail: str | None = None) -> None:
        # OVMS formats details as "<base message> - <detail>" where there is a detail.
        self.code = code
        self.message = message if detail is None else f"{message} - {detail}"
        super().__init__(self.message)


def invalid_argument(message: str, detail: str | None = None) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message, detail)


# OVMS's base messages (src/status.cpp), named after the situation they describe.
MODEL_NAME_MISSING = "Model with requested name is not found"
MODEL_VERSION_MISSING = "Model with requested version is not found"
MODEL_VERSION_RETIRED = "Model with requested version is retired"
MODEL_VERSION_NOT_LOADED_YET = "Model with requested version is not loaded yet"
MODEL_SPEC_MISSING = "model_spec missing in request"
INVALID_SIGNATURE_NAME = "Invalid signature name"
INVALID_NO_OF_INPUTS = "Invalid number of inputs"
INVALID_MISSING_INPUT = "Missing input with specific name"
INVALID_PRECISION = "Invalid input precision"
INVALID_NO_OF_SHAPE_DIMENSIONS = "Invalid number of shape dimensions"
INVALID_BATCH_SIZE = "Invalid input batch size"
INVALID_SHAPE = "Invalid input shape"
INVALID_OUTPUT_FILTER = "Invalid output name in output_filter"
RESHAPE_FAILED = "Model could not be reshaped with requested shape"


def model_name_missing() -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, MODEL_NAME_MISSING)


def model_version_missing() -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, MODEL_VERSION_MISSING)


def model_version_retired() -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, MODEL_VERSION_RETIRED)


def model_version_not_loaded_yet() -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, MODEL_VERSION_NOT_LOADED_YET)


class ConfigError(Exception):
    """The server cannot start (or reload) with the configuration it was given; str() is for the user."""
