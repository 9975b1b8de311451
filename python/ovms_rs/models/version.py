"""One loaded version of a model: its lifecycle state, its OpenVINO compiled model and infer-request pool."""

from __future__ import annotations

import dataclasses
import enum
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import openvino as ov

from .. import _native
from ..config.model import ModelConfig
from ..config.shapes import AUTO, Dim
from ..errors import (
    INFER_QUEUE_FULL,
    RESHAPE_FAILED,
    ServingError,
    infer_deadline_exceeded,
    infer_queue_full,
    model_version_not_loaded_yet,
    model_version_retired,
)
from ..metrics import Counted
from . import repository
from .infer_pool import InferRequestPool, QueueFull, WaitTimedOut
from .inference import run_inference
from .model_io import InputBinding, bind_input, per_input, reshape
from .tensor_spec import TensorSpec, dim_of, precision_of

if TYPE_CHECKING:  # both import this module
    from ..request.validation import Validated
    from .batcher import Batcher

log = logging.getLogger(__name__)

# The outputs a request is answered with: (public name, model port), in the model's order.
Ports = tuple[tuple[str, int], ...]
# Turns a request's outputs [(name, array)] into the reply bytes.
Encode = Callable[[list[tuple[str, np.ndarray[Any, Any]]]], bytes]

# OVMS waits this long for a LOADING version before answering UNAVAILABLE.
LOADING_WAIT_SECONDS = 10.0
# Requests per version allowed to wait for a free infer request before RESOURCE_EXHAUSTED.
DEFAULT_MAX_QUEUE = 128
# Compiled-model properties the load line reports: what plugin_config turned into.
REPORTED_PROPERTIES = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS")


class ModelState(enum.IntEnum):
    """tensorflow.serving.ModelVersionStatus.State."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


class ErrorCode(enum.IntEnum):
    """tensorflow.error.Code values a version reports; GetModelStatus's error_message is the name."""

    OK = 0
    UNKNOWN = 2


@dataclass
class Compiled:
    """A compiled model with everything a request needs from it; replaced as a whole on auto-reshape."""

    model: ov.CompiledModel
    pool: InferRequestPool[ov.InferRequest]
    inputs: dict[str, InputBinding]
    outputs: dict[str, TensorSpec]
    # Every output as (public name, port), in the model's order; what a request without a filter gets.
    output_ports: Ports
    # Model input name -> public input name, for reshaping by public name.
    model_names: dict[str, str]
    nireq: int
    # With batching, each infer request's twin (by the request's id) on a second compilation at a
    # static batch of one, and that compilation's input shapes by port: see ModelVersion._twins.
    twins: dict[int, ov.InferRequest] = dataclasses.field(default_factory=dict)
    twin_shapes: dict[int, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    def infer_request_for(
        self, request: ov.InferRequest, arrays: Mapping[int, np.ndarray[Any, Any]]
    ) -> ov.InferRequest:
        """The infer request to run `arrays` on, holding `request` (taken from `pool`): its static
        batch-1 twin when the arrays have exactly the twin's shapes, else `request` itself."""
        if self.twins and all(
            port in arrays and arrays[port].shape == shape
            for port, shape in self.twin_shapes.items()
        ):
            return self.twins[id(request)]
        return request

    def describe(self) -> str:
        """What OpenVINO made of the configuration, for the log."""
        parts = []
        for name in REPORTED_PROPERTIES:
            try:
                parts.append(f"{name}={self.model.get_property(name)}")
            except RuntimeError:  # a device that does not report it
                continue
        twins = ", each with a static batch-1 twin" if self.twins else ""
        return ", ".join([*parts, f"{self.nireq} infer requests{twins}"])


class ModelVersion:
    """A version directory turned into something that serves Predict; thread-safe."""

    def __init__(
        self,
        model_name: str,
        version: int,
        path: Path,
        config: ModelConfig,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.config = config
        self.state = ModelState.START
        self.error_code = ErrorCode.OK
        # Why the last load failed, for the log and the config API; never sent in GetModelStatus,
        # whose error_message is the error code's name (as OVMS).
        self.load_error: str | None = None
        self._core: ov.Core | None = None
        self._active: Compiled | None = None
        # Requests take the plain lock (a C call, no Python-level Condition methods per request); state
        # changes wait and notify on the condition built over it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._in_flight = 0
        # Requests waiting for a free infer request; bounded so a flood can't grow memory without limit.
        self._max_queue = max_queue
        self._reshape_lock = threading.Lock()
        self._fingerprint = _fingerprint(path)
        # This version's Prometheus series (None while metrics are off); a replacement object for the
        # same version number counts into the same ones.
        self.metrics = _native.version_metrics(model_name, version)
        # With config.batching: the dynamic batcher that submit() hands requests to (models/batcher.py).
        self.batcher: Batcher | None = None

    def __repr__(self) -> str:
        return f"ModelVersion({self.model_name!r}, {self.version}, {self.state.name})"

    @property
    def inputs(self) -> dict[str, InputBinding]:
        return self._active.inputs if self._active else {}

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        return self._active.outputs if self._active else {}

    @property
    def auto_reshape(self) -> str | None:
        """ "shape" or "batch" when the config says `auto` (reshape to what requests send), else None."""
        if self.config.shape == AUTO or (
            isinstance(self.config.shape, dict) and AUTO in self.config.shape.values()
        ):
            return "shape"
        return "batch" if self.config.batch_size == AUTO else None

    # ---- lifecycle ----

    def _set_state(self, state: ModelState) -> None:
        with self._cond:
            self.state = state
            self._cond.notify_all()

    def load(self, core: ov.Core) -> bool:
        """START -> LOADING -> (compile, warmup) -> AVAILABLE; a failure stays LOADING with error UNKNOWN,
        as in OVMS."""
        from .warmup import warm_up  # warmup uses request.validation, which imports this module

        self._set_state(ModelState.LOADING)
        self._core = core
        try:
            active = self._compile(core, {})
        except (
            Exception
        ) as e:  # any failure of read/reshape/compile is this version's, not the server's
            return self._load_failed(one_line_reason(e))
        self._active = active
        # TF Serving's warmup: requests through the serving path, before AVAILABLE; not client requests,
        # so not counted in the metrics.
        metrics, self.metrics = self.metrics, None
        try:
            warm_up(self)
        except Exception as e:  # WarmupError, or what OpenVINO raised while replaying
            self._active = None
            return self._load_failed(f"warmup failed: {one_line_reason(e)}")
        finally:
            self.metrics = metrics
        self._report_compiled(active)
        self._start_batcher()
        log.info(
            "Loaded %s version %d (%s): %s",
            self.model_name,
            self.version,
            self.path,
            active.describe(),
        )
        self._set_state(ModelState.AVAILABLE)
        return True

    def _load_failed(self, reason: str) -> bool:
        log.error(
            "Failed to load %s version %d from %s: %s",
            self.model_name,
            self.version,
            self.path,
            reason,
        )
        with self._cond:
            self.error_code = ErrorCode.UNKNOWN
            self.load_error = reason
            self._cond.notify_all()
        return False

    def _compile(self, core: ov.Core, overrides: dict[str, tuple[int, ...]]) -> Compiled:
        """read_model -> reshape (config, then `overrides` in client layout) -> compile -> request pool."""
        model = core.read_model(str(repository.find_model_file(self.path)))
        input_names, output_names = repository.read_mapping(self.path)
        layouts = per_input(self.config.layout, model)
        reshape(model, self._reshape_config(), layouts, overrides)
        compiled = core.compile_model(
            model, self.config.target_device, self.config.compile_properties()
        )
        inputs: dict[str, InputBinding] = {}
        model_names: dict[str, str] = {}
        for port, node in enumerate(compiled.inputs):
            name = node.get_any_name()
            public = input_names.get(name, name)
            request = layouts.get(name) or layouts.get(public)
            inputs[public] = bind_input(public, port, node, request, model.input(port))
            model_names[name] = public
        output_ports = []
        outputs: dict[str, TensorSpec] = {}
        for port, node in enumerate(compiled.outputs):
            name = node.get_any_name()
            public = output_names.get(name, name)
            shape = tuple(dim_of(d) for d in node.get_partial_shape())
            outputs[public] = TensorSpec(public, precision_of(node.get_element_type()), shape)
            output_ports.append((public, port))
        nireq = self.config.nireq or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        requests = [compiled.create_infer_request() for _ in range(max(nireq, 1))]
        pool = InferRequestPool(requests, self._max_queue)
        active = Compiled(
            compiled, pool, inputs, outputs, tuple(output_ports), model_names, len(requests)
        )
        if not overrides:
            self._twins(core, model, layouts, active, requests)
        return active

    def _twins(
        self,
        core: ov.Core,
        model: ov.Model,
        layouts: dict[str, Any],
        active: Compiled,
        requests: list[ov.InferRequest],
    ) -> None:
        """With batching, the model is compiled with a `1:max_batch_size` batch dimension, and a batch of
        one runs 8-13 % slower on it than on the static shape that batching off compiles (demo model,
        BENCHMARKS.md "Dynamic batching"). A lone request is the common case at low load, so the model
        is compiled a second time at batch 1, each infer request of the pool gets a twin there, and a
        batch of one row runs on the twin of the infer request it holds (so nireq still bounds the
        inferences in flight). Costs a second compilation's load time and memory; skipped when the batch
        of one would be padded, when batching is off for want of a batch dimension, and when the batch-1
        shapes are not all static."""
        from .batcher import batch_axes

        batching = self.config.batching
        if batching is None or batching.max_batch_size == 1 or batching.padded_size(1) != 1:
            return
        if batch_axes(active.inputs) is None:
            return  # served unbatched (`_start_batcher`)
        # A copy of the model `_compile` read (not a second read of its files), at batch 1.
        one = model.clone()
        reshape(one, dataclasses.replace(self.config, batch_size=Dim.static(1)), layouts, {})
        if any(node.get_partial_shape().is_dynamic for node in one.inputs):
            return
        single = core.compile_model(
            one, self.config.target_device, self.config.compile_properties()
        )
        active.twin_shapes = {
            port: tuple(node.get_shape()) for port, node in enumerate(single.inputs)
        }
        active.twins = {id(r): single.create_infer_request() for r in requests}

    def _reshape_config(self) -> ModelConfig:
        """With batching, the batch dimension becomes 1:max_batch_size (whatever the model's or
        --batch_size said): one compiled model takes every batch the batcher forms, and requests of
        1..max_batch_size rows pass validation."""
        batching = self.config.batching
        if batching is None:
            return self.config
        return dataclasses.replace(self.config, batch_size=Dim(1, batching.max_batch_size))

    def _start_batcher(self) -> None:
        from .batcher import Batcher, batch_axes

        if self.config.batching is None:
            return
        axes = batch_axes(self.inputs)
        if axes is None:
            log.warning(
                "Batching disabled for %s version %d: an input has no batch dimension",
                self.model_name,
                self.version,
            )
            return
        self.batcher = Batcher(self, self.config.batching, axes)

    def compiled(self) -> Compiled:
        """The compiled model requests are served by now (call between acquire() and release())."""
        active = self._active
        assert active is not None, "compiled() on a version that is not serving"
        return active

    def reshape(self, shapes: dict[str, tuple[int, ...]]) -> Compiled:
        """Auto-reshape: recompile for the shapes a request sent ({public name: shape, client layout});
        returns the compiled model for those shapes."""
        with self._reshape_lock:
            active = self._active
            if active is not None and all(
                all(
                    d.is_static and d.lo == n for d, n in zip(active.inputs[name].spec.shape, shape)
                )
                for name, shape in shapes.items()
            ):
                return active  # another request already reshaped to these shapes
            assert self._core is not None and active is not None
            by_model_name = {m: shapes[p] for m, p in active.model_names.items() if p in shapes}
            try:
                reshaped = self._compile(self._core, by_model_name)
                self._report_compiled(reshaped)
                self._active = reshaped
            except Exception as e:
                log.warning(
                    "Reshape of %s version %d to %s failed: %s",
                    self.model_name,
                    self.version,
                    shapes,
                    e,
                )
                raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, RESHAPE_FAILED) from None
            log.info("Reshaped %s version %d to %s", self.model_name, self.version, shapes)
            return reshaped

    def files_changed(self) -> bool:
        """Whether the version directory changed since this version was created (to retry failed loads)."""
        return _fingerprint(self.path) != self._fingerprint

    def retire(self) -> None:
        """AVAILABLE -> UNLOADING -> (in-flight requests finish) -> END; frees the compiled model."""
        with self._cond:
            if self.state in (ModelState.UNLOADING, ModelState.END):
                return
            self.state = ModelState.UNLOADING
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._in_flight == 0)
            if self.batcher is not None:
                self.batcher.close()  # its queue is empty: every request in it was in flight
            self._active = None
            self.state = ModelState.END
            self._cond.notify_all()
        if self.metrics is not None:
            self.metrics.unloaded(id(self))
        log.info("Retired %s version %d", self.model_name, self.version)

    def wait_until_loaded(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self.state not in (ModelState.START, ModelState.LOADING)
                    or self.error_code != ErrorCode.OK
                ),
                timeout,
            )

    def acquire(self) -> None:
        """Marks a request in flight; raises OVMS's errors when this version cannot serve."""
        with self._lock:
            self._check_servable()
            self._in_flight += 1

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._cond.notify_all()

    # ---- metrics ----

    def count_succeeded(self, counted: Counted | None, started_ns: int) -> None:
        """A request to this version succeeded (a Predict's time runs from `started_ns`)."""
        if self.metrics is not None and counted is not None:
            elapsed = time.perf_counter_ns() - started_ns
            self.metrics.succeeded(counted.interface, counted.method, elapsed)

    def count_failed(self, counted: Counted | None, error: BaseException) -> None:
        """A request that found this version failed with `error`."""
        if self.metrics is not None and counted is not None:
            refused = isinstance(error, ServingError) and error.message == INFER_QUEUE_FULL
            self.metrics.failed(counted.interface, counted.method, refused)

    def _report_compiled(self, active: Compiled) -> None:
        if self.metrics is None:
            return
        try:
            streams = int(str(active.model.get_property("NUM_STREAMS")))
        except (RuntimeError, ValueError):  # a device that does not report it as a number
            streams = 0
        self.metrics.loaded(streams, active.nireq, id(self))

    def _check_servable(self) -> None:
        if self.state == ModelState.AVAILABLE:
            return
        if self.state in (ModelState.UNLOADING, ModelState.END):
            raise model_version_retired()
        raise model_version_not_loaded_yet()

    # ---- inference ----

    def _take_infer_request(self, active: Compiled, timeout: float | None) -> ov.InferRequest:
        if timeout is not None and timeout > threading.TIMEOUT_MAX:
            timeout = None  # no client deadline: grpcio reports an effectively infinite one
        try:
            return active.pool.take(timeout)
        except QueueFull:
            raise infer_queue_full() from None
        except WaitTimedOut:
            raise infer_deadline_exceeded() from None

    def submit(
        self,
        validated: Validated,
        timeout: float | None = None,
        encode: Encode | None = None,
    ) -> bytes:
        """A validated request's reply: through the batcher when batching is on (no `auto` shapes
        there), else infer() on the compiled model the request was validated against."""
        if self.batcher is not None:
            return self.batcher.submit(validated.arrays, validated.ports, timeout, encode)
        return self.infer(validated.arrays, validated.ports, timeout, encode, validated.compiled)

    def infer(
        self,
        arrays: Mapping[int, np.ndarray[Any, Any]],
        ports: Ports,
        timeout: float | None = None,
        encode: Encode | None = None,
        compiled: Compiled | None = None,
    ) -> bytes:
        """Runs one inference (interpreter released inside OpenVINO) and returns the reply: PredictResponse
        bytes, or what `encode(outputs)` makes of the outputs (REST's JSON). The outputs are views of the
        infer request's buffers, valid only inside `encode`. Call between acquire() and release().
        `ports`: the outputs to answer with (`Validated.ports`); `timeout`: seconds left of the
        client's deadline; `compiled`: the compiled model the arrays were validated against (default:
        the current one)."""
        active = compiled or self.compiled()
        metrics = self.metrics
        waiting = time.perf_counter_ns() if metrics is not None else 0
        request = self._take_infer_request(active, timeout)
        inference_ns = None
        try:
            if metrics is not None:
                metrics.infer_started(time.perf_counter_ns() - waiting)
            runner = active.infer_request_for(request, arrays)
            outputs, inference_ns = run_inference(runner, arrays, ports)
            if encode is not None:
                return encode(outputs)
            return _native.build_predict_response(self.model_name, self.version, outputs)
        finally:
            if metrics is not None:
                metrics.infer_finished(inference_ns)
            active.pool.put(request)


# The source locations OpenVINO's messages start with, one line each.
_OPENVINO_LOCATION = re.compile(r"Exception from \S+:\d+:")


def one_line_reason(error: Exception) -> str:
    """An exception's message on one line, without OpenVINO's source locations: e.g.
    `NotFound: Unsupported property NOT_A_REAL_KEY by CPU plugin.`"""
    lines = (line.strip() for line in str(error).splitlines())
    kept = [line for line in lines if line and not _OPENVINO_LOCATION.fullmatch(line)]
    return " ".join(kept) or type(error).__name__


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        return tuple(
            sorted(
                (str(p), p.stat().st_size, p.stat().st_mtime_ns)
                for p in path.rglob("*")
                if p.is_file()
            )
        )
    except OSError:
        return ()
