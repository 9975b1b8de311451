"""The REST baseline: TF Serving's REST predict (row format) in plain Python, as a competent developer
would write it: Starlette on uvicorn, orjson + numpy for the body, OpenVINO with an infer-request pool
(inference in Starlette's thread pool, so the event loop keeps reading requests), orjson for the reply.

    python -m benches.plain_rest_server --port 8001 --model_name m --model_path /models/m [--nireq N]
"""

from __future__ import annotations

import argparse
import queue
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build_app(model_name: str, model_path: Path, nireq: int) -> Starlette:
    version_dir = max(
        (p for p in model_path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(version_dir / "model.xml")), "CPU", {"PERFORMANCE_HINT": "LATENCY"}
    )
    requests: queue.Queue[ov.InferRequest] = queue.Queue()
    for _ in range(nireq or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))):
        requests.put(compiled.create_infer_request())
    dtype = np.float32

    def infer(x: np.ndarray[Any, Any]) -> bytes:
        request = requests.get()
        try:
            request.infer({0: x}, share_inputs=True)
            return orjson.dumps({"predictions": request.get_output_tensor(0).data.tolist()})
        finally:
            requests.put(request)

    async def predict(request: Request) -> Response:
        name = request.path_params["name"]
        if name != f"{model_name}:predict":
            return Response(b'{"error":"Model with requested name is not found"}', 404)
        doc = orjson.loads(await request.body())
        x = np.asarray(doc["instances"], dtype=dtype)
        body = await run_in_threadpool(infer, x)
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/models/{name}", predict, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_path", type=Path, required=True)
    parser.add_argument("--nireq", type=int, default=0)
    args = parser.parse_args()
    app = build_app(args.model_name, args.model_path, args.nireq)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
