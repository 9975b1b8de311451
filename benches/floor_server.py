"""The grpcio floor: a Predict that answers a canned reply without looking at the request.

Not a baseline to beat: it is what any server built on grpcio's synchronous Python server pays per request
(HTTP/2 receive of the request, bytes handed to a worker thread, reply sent), so the load benchmark can
split ovms_rs's overhead into grpcio's share and ovms_rs's own.

    python -m benches.floor_server --port 9002 [--grpc_bind_address 127.0.0.1]
"""

from __future__ import annotations

import argparse

import grpc
import numpy as np
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2

from .plain_server import grpc_server, serve_until_signalled


def canned_reply(model_name: str, floats: int = 1000) -> bytes:
    """A PredictResponse of prob [1,floats] float32: the size of the demo's by default."""
    reply = predict_pb2.PredictResponse()
    reply.model_spec.name = model_name
    reply.model_spec.version.value = 1
    tensor = reply.outputs["prob"]
    tensor.dtype = 1
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=floats)
    tensor.tensor_content = np.full((1, floats), 1e-3, np.float32).tobytes()
    data: bytes = reply.SerializeToString()
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc_bind_address", default="127.0.0.1")
    parser.add_argument("--model_name", default="tiny")
    parser.add_argument("--grpc_workers", type=int, default=32)
    args, _ = parser.parse_known_args(argv)  # the model flags the other servers take are ignored
    reply = canned_reply(args.model_name)
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(lambda request, context: reply)},
    )
    server = grpc_server(args.grpc_workers)
    server.add_generic_rpc_handlers((handler,))
    serve_until_signalled(server, args.grpc_bind_address, args.port)


if __name__ == "__main__":
    main()
