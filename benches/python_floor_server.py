"""The transport floor plus one entry into Python: ovms_rs's own gRPC transport (`_native.GrpcServer`,
the reassembly copy into a bytearray, the hand-off to a handler thread, the interpreter lock) with a
Python handler that answers a canned reply without looking at the request.

Between benches/loadgen/src/floor.rs (no Python) and ovms_rs (the whole Predict), it splits ovms_rs's
overhead into the cost of entering Python once and the cost of what the handler does there.

    python -m benches.python_floor_server --port 9002 [--grpc_bind_address 127.0.0.1] [--reply_floats N]
"""

from __future__ import annotations

import argparse
import signal
import threading

from ovms_rs import _native
from ovms_rs.malloc_tuning import keep_freed_buffers

from .floor_server import canned_reply


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc_bind_address", default="127.0.0.1")
    parser.add_argument("--model_name", default="tiny")
    # benches/reply_copy.py: replies larger than the demo's [1,1000] float32.
    parser.add_argument("--reply_floats", type=int, default=1000)
    args, _ = parser.parse_known_args(argv)  # the model flags the other servers take are ignored
    reply = canned_reply(args.model_name, args.reply_floats)
    keep_freed_buffers()  # as the server does

    def handler(
        path: str, request: bytearray | _native.RequestBody, timeout: float | None
    ) -> tuple[int, str, bytes]:
        return 0, "", reply

    server = _native.GrpcServer(
        handler,
        args.grpc_bind_address,
        args.port,
        max_message_bytes=1 << 30,
        max_concurrent_rpcs=1024,
        handler_threads=64,
    )
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(5.0)


if __name__ == "__main__":
    main()
