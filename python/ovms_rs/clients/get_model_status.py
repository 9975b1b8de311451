"""`python -m ovms_rs.clients.get_model_status`: the state of each version of a served model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._proto.tensorflow_serving.apis import get_model_status_pb2
from .connection import (
    REQUEST_TIMEOUT_S,
    add_connection_args,
    add_model_args,
    model_stub,
    open_channel,
    run,
)

# tensorflow_serving/apis/get_model_status.proto: ModelVersionStatus.State
STATE_NAMES = {
    0: "UNKNOWN",
    10: "START",
    20: "LOADING",
    30: "AVAILABLE",
    40: "UNLOADING",
    50: "END",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ovms_rs.clients.get_model_status",
        description="Get information about the status of served models",
    )
    add_connection_args(parser)
    add_model_args(
        parser,
        name_help="Model name to query. default: resnet",
        version_help="Model version to query. Lists all versions if not specified",
    )
    return parser


def print_status(response: get_model_status_pb2.GetModelStatusResponse) -> None:
    for status in response.model_version_status:
        print(f"\nModel version: {status.version}")
        print("State", STATE_NAMES.get(status.state, str(status.state)))
        print("Error code: ", status.status.error_code)
        print("Error message: ", status.status.error_message)


def get_status(args: argparse.Namespace) -> int:
    print("Getting model status for model:", args.model_name)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = args.model_name
    if args.model_version is not None:
        request.model_spec.version.value = args.model_version
    with open_channel(args) as channel:
        response: get_model_status_pb2.GetModelStatusResponse = model_stub(channel).GetModelStatus(
            request, REQUEST_TIMEOUT_S
        )
    print_status(response)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), get_status, argv)


if __name__ == "__main__":
    sys.exit(main())
