"""`python -m ovms_rs.clients.get_serving_meta`: a served model's inputs and outputs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from .._proto.tensorflow.core.framework import types_pb2
from .._proto.tensorflow.core.protobuf import meta_graph_pb2
from .._proto.tensorflow_serving.apis import get_model_metadata_pb2
from .connection import (
    REQUEST_TIMEOUT_S,
    ClientError,
    add_connection_args,
    add_model_args,
    open_channel,
    prediction_stub,
    run,
)

SignatureTensors = dict[str, tuple[list[int], int]]  # name -> (shape, dtype)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ovms_rs.clients.get_serving_meta",
        description="Get information about served models",
    )
    add_connection_args(parser)
    add_model_args(
        parser,
        name_help="Define model name, must be same as is in service. default: resnet",
        version_help="Define model version - must be numerical",
    )
    return parser


def signature(
    response: get_model_metadata_pb2.GetModelMetadataResponse,
) -> tuple[SignatureTensors, SignatureTensors]:
    """The serving_default signature's inputs and outputs."""
    if "signature_def" not in response.metadata:
        raise ClientError("the server's metadata has no signature_def")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if not response.metadata["signature_def"].Unpack(signature_map):
        raise ClientError("the server's signature_def is not a SignatureDefMap")
    if "serving_default" not in signature_map.signature_def:
        raise ClientError("the server's signature_def has no serving_default signature")
    serving_default = signature_map.signature_def["serving_default"]
    return _tensors(serving_default.inputs), _tensors(serving_default.outputs)


def _tensors(infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> SignatureTensors:
    return {
        name: ([d.size for d in info.tensor_shape.dim], int(info.dtype))
        for name, info in infos.items()
    }


def dtype_name(dtype: int) -> str:
    try:
        return str(types_pb2.DataType.Name(dtype))
    except ValueError:
        return str(dtype)


def get_metadata(args: argparse.Namespace) -> int:
    print("Getting model metadata for model:", args.model_name)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = args.model_name
    if args.model_version is not None:
        request.model_spec.version.value = args.model_version
    request.metadata_field.append("signature_def")
    with open_channel(args) as channel:
        response: get_model_metadata_pb2.GetModelMetadataResponse = prediction_stub(
            channel
        ).GetModelMetadata(request, REQUEST_TIMEOUT_S)
    inputs, outputs = signature(response)
    print("Inputs metadata:")
    for name, (shape, dtype) in inputs.items():
        print(f"\tInput name: {name}; shape: {shape}; dtype: {dtype_name(dtype)}")
    print("Outputs metadata:")
    for name, (shape, dtype) in outputs.items():
        print(f"\tOutput name: {name}; shape: {shape}; dtype: {dtype_name(dtype)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), get_metadata, argv)


if __name__ == "__main__":
    sys.exit(main())
