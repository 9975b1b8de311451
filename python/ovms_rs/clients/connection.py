"""What every client shares: connection flags, the gRPC channel and stubs, one-line errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import grpc

from .._proto.tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

MAX_MESSAGE_BYTES = 1024 * 1024 * 1024  # OVMS accepts messages up to 1 GB
REQUEST_TIMEOUT_S = 10.0  # OVMS's clients wait 10 s for every call


class ClientError(Exception):
    """A failure shown to the user as one line on stderr (exit status 1), not a traceback."""


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """--grpc_address and --grpc_port, with OVMS's defaults and help."""
    parser.add_argument(
        "--grpc_address",
        required=False,
        default="localhost",
        help="Specify url to grpc service. default:localhost",
    )
    parser.add_argument(
        "--grpc_port",
        required=False,
        default=9000,
        type=int,
        help="Specify port to grpc service. default: 9000",
    )


def add_model_args(parser: argparse.ArgumentParser, name_help: str, version_help: str) -> None:
    """--model_name (default resnet, as OVMS's clients) and --model_version (default: the server's)."""
    parser.add_argument("--model_name", default="resnet", help=name_help, dest="model_name")
    parser.add_argument(
        "--model_version", default=None, type=int, help=version_help, dest="model_version"
    )


def target(args: argparse.Namespace) -> str:
    return f"{args.grpc_address}:{args.grpc_port}"


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """An insecure channel to --grpc_address:--grpc_port that carries messages up to 1 GB."""
    return grpc.insecure_channel(
        target(args),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )


def prediction_stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def model_stub(channel: grpc.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def describe_rpc_error(error: grpc.RpcError, args: argparse.Namespace) -> str:
    """One line naming the gRPC status, the server's details and what was asked for."""
    if not isinstance(error, grpc.Call):
        return f"gRPC call to {target(args)} failed: {error}"
    code = error.code()
    details = " ".join(str(error.details() or "").split())
    model = f"model: {args.model_name}"
    if args.model_version is not None:
        model += f", version: {args.model_version}"
    # Connection failures come from the gRPC library, not from the server: no OVMS message.
    if code is grpc.StatusCode.UNAVAILABLE and not details.startswith("Model with"):
        return f"cannot reach the server at {target(args)}: {details}"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from the server at {target(args)} within {REQUEST_TIMEOUT_S:g} s"
    return f"{code.name}: {details} ({model}; server: {target(args)})"


def describe_os_error(error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason


def run(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
) -> int:
    """Parses the flags and runs the client; expected failures become `Error: ...` on stderr."""
    args = parser.parse_args(argv)
    try:
        return body(args)
    except grpc.RpcError as e:
        message = describe_rpc_error(e, args)
    except ClientError as e:
        message = str(e)
    except OSError as e:
        message = describe_os_error(e)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    print(f"Error: {message}", file=sys.stderr)
    return 1


def add_tensor_name_args(parser: argparse.ArgumentParser) -> None:
    """--input_name and --output_name with the defaults of OVMS's example clients."""
    parser.add_argument(
        "--input_name",
        required=False,
        default="input",
        help="Specify input tensor name. default: input",
    )
    parser.add_argument(
        "--output_name",
        required=False,
        default="resnet_v1_50/predictions/Reshape_1",
        help="Specify output name. default: resnet_v1_50/predictions/Reshape_1",
    )
