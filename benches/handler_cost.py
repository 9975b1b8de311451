"""Where a Predict's server CPU goes outside the transport: the Python handler alone, in one process.

    .venv/bin/python -m benches.handler_cost [--calls 3000] [--rounds 8]

Workload (c)'s tiny model and 602 KB request. Each stage is timed as CPU time per call (this thread's
`time.thread_time_ns`, so other tenants of the machine count less), taking turns in rounds:

- `in-process`: benches.inprocess's loop body (take an infer request, set the shared input, infer, copy the
  output out): the limit, as in the load benchmark;
- `copy`: the transport's reassembly copy, `bytearray(request)` of the 602 KB;
- `parse`: `_native.parse_predict_request` (numpy views over the request);
- `reply`: `_native.build_predict_response` of the [1,1000] output;
- `hold`: `registry.serving` entered and left (resolve the version, hold it, count);
- `validate`: `validation.validate` of the parsed inputs;
- `infer`: an infer request taken from the version's pool, `run_inference`, put back;
- `handler`: the whole Python handler, `Dispatcher(path, bytearray, None)` as the native transport calls
  it (parse, resolve, validate, infer, reply, metrics);
- `handler - in-process - parse - reply`: what the service logic itself adds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openvino as ov
from ovms_rs import _native
from ovms_rs.config.model import ModelConfig
from ovms_rs.models.inference import run_inference
from ovms_rs.models.registry import ModelRegistry
from ovms_rs.request.validation import validate
from ovms_rs.server.health import Readiness
from ovms_rs.server.methods import Dispatcher, method_table

from .workloads import TINY_MODEL_NAME, all_workloads, build_tiny_model

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def per_call_us(work: Callable[[], object], calls: int) -> float:
    t0 = time.thread_time_ns()
    for _ in range(calls):
        work()
    return (time.thread_time_ns() - t0) / calls / 1e3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=3000, help="calls per stage per round")
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ovms_rs_handler_") as tmp:
        workload = all_workloads(Path(tmp))["c"]
        build_tiny_model(workload.model_path)
        request = workload.requests()[0]
        registry = ModelRegistry()
        registry.serve_model(ModelConfig(TINY_MODEL_NAME, workload.model_path, nireq=1))
        dispatcher = Dispatcher(method_table(registry, None, Readiness(registry)))
        assert dispatcher(PREDICT, bytearray(request), None)[0] == 0

        core = ov.Core()
        compiled = core.compile_model(
            str(workload.model_path / "1" / "model.xml"), "CPU", {"PERFORMANCE_HINT": "LATENCY"}
        )
        infer_request = compiled.create_infer_request()
        array = workload.input_array()

        def in_process() -> None:
            infer_request.set_input_tensor(0, ov.Tensor(array, shared_memory=True))
            infer_request.infer()
            infer_request.get_output_tensor(0).data.tobytes()

        outputs = [("prob", infer_request.get_output_tensor(0).data)]
        body = bytearray(request)
        parsed = _native.parse_predict_request(body)
        model_name, version, label, inputs, _ = parsed

        def hold() -> None:
            with registry.serving(model_name, version, label):
                pass

        model_version = registry.resolve(model_name, version, label)
        model_version.acquire()  # held for the rest of the run, as during a request
        validated = validate(model_version, inputs)
        compiled = model_version.compiled()
        infer_pool = compiled.pool
        ports = compiled.output_ports

        def infer() -> None:
            taken = infer_pool.take(None)
            try:
                run_inference(taken, validated.arrays, ports)
            finally:
                infer_pool.put(taken)

        stages: dict[str, Callable[[], object]] = {
            "in-process": in_process,
            "copy": lambda: bytearray(request),
            "parse": lambda: _native.parse_predict_request(body),
            "reply": lambda: _native.build_predict_response(TINY_MODEL_NAME, 1, outputs),
            "hold": hold,
            "validate": lambda: validate(model_version, inputs),
            "infer": infer,
            "handler": lambda: dispatcher(PREDICT, bytearray(request), None),
        }
        samples: dict[str, list[float]] = {name: [] for name in stages}
        for round_ in range(args.rounds):
            names = list(stages)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                samples[name].append(per_call_us(stages[name], args.calls))
        median = {name: statistics.median(xs) for name, xs in samples.items()}
        for name, us in median.items():
            spread = f"{min(samples[name]):.1f}-{max(samples[name]):.1f}"
            print(f"{name:12s} {us:8.1f} us CPU per call (rounds {spread})")
        logic = median["handler"] - median["in-process"] - median["parse"] - median["reply"]
        print(
            f"{'logic':12s} {logic:8.1f} us: handler - in-process - parse - reply (copy included)"
        )


if __name__ == "__main__":
    main()
