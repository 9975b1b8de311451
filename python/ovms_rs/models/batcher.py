"""Dynamic batching of one model version (TF Serving's BatchingParameters).

A validated request (arrays already in the model's layout) is queued by its batching key: the shapes of
its inputs without the batch dimension, their dtypes and the output filter. `num_batch_threads` threads
each wait for a queued request, take an infer request from the version's pool, and then gather, in
arrival order, the requests of the oldest key up to `max_batch_size` rows, waiting at most
`batch_timeout_micros` from the oldest one's arrival for the batch to fill (the batch also grows while
the thread waits for a free infer request). The rows are concatenated along each input's batch axis,
padded with zeros to the next of `allowed_batch_sizes` (into a buffer the infer request keeps, so a
batch costs one copy of its rows and no fresh allocation), run as one inference, and each request's reply
is encoded from its own rows of the outputs (axis 0) while the infer request still holds them.

With `batch_timeout_micros` 0, a request that finds nothing queued and a free infer request runs on its
own thread as a batch of one: its arrays straight to OpenVINO, no task, no hand-off, no copy.

The request's handler thread blocks on its task until the reply or the request's deadline: a deadline
that passes while queued (or running) answers DEADLINE_EXCEEDED; a key with `max_enqueued_batches`
batches' worth of rows waiting answers RESOURCE_EXHAUSTED.

Batch sizes formed (rows before padding) are counted per size in `batch_sizes` (and the padded sizes
run in `padded_sizes`), for the metrics (`ovms_rs_batch_size`) and logged at debug level.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import openvino as ov

from .. import _native
from ..config.batching import BatchingParameters
from ..errors import batch_deadline_exceeded, batch_output_not_batched, batch_queue_full
from .infer_pool import QueueFull, WaitTimedOut
from .inference import run_inference

if TYPE_CHECKING:
    from .model_io import InputBinding
    from .version import Compiled, Encode, ModelVersion, Ports

log = logging.getLogger(__name__)

# Task states.
_QUEUED, _RUNNING, _DONE, _ABANDONED = range(4)

Key = tuple[Any, ...]
Arrays = Mapping[int, np.ndarray[Any, Any]]


class _Task:
    __slots__ = (
        "arrays",
        "deadline",
        "done",
        "encode",
        "enqueued",
        "error",
        "key",
        "result",
        "rows",
        "state",
    )

    def __init__(
        self, key: Key, arrays: Arrays, rows: int, encode: Encode | None, deadline: float | None
    ) -> None:
        self.key = key
        self.arrays = arrays
        self.rows = rows
        self.encode = encode
        self.deadline = deadline
        self.enqueued = time.monotonic()
        self.state = _QUEUED
        self.result: bytes | None = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()  # released when the task is complete


def batch_axes(inputs: Mapping[str, InputBinding]) -> dict[int, int] | None:
    """{model port: batch axis in the model's layout}, or None when an input has no batch dimension."""
    axes: dict[int, int] = {}
    for binding in inputs.values():
        if (
            binding.transpose_to is not None
        ):  # arrays reach the batcher transposed to the model layout
            axis: int | None = (
                binding.transpose_to.index("N") if "N" in binding.transpose_to else None
            )
        else:
            axis = binding.spec.batch_axis
        if axis is None:
            return None
        axes[binding.port] = axis
    return axes


class Batcher:
    def __init__(
        self, version: ModelVersion, params: BatchingParameters, axes: dict[int, int]
    ) -> None:
        self._version = version
        self.params = params
        self._axes = axes
        self._cond = threading.Condition(threading.Lock())
        self._queues: dict[Key, deque[_Task]] = {}
        self._rows: dict[Key, int] = {}
        # Per infer request (gone with it) and port: the tensor batches are gathered into, reused while
        # the row shape and dtype stay (a fresh multi-MB array per batch costs page faults besides the copy).
        self._buffers: weakref.WeakKeyDictionary[
            ov.InferRequest, dict[int, np.ndarray[Any, Any]]
        ] = weakref.WeakKeyDictionary()
        self._counts = threading.Lock()  # batch_sizes, padded_sizes, _buffers' keys
        self._closed = False
        # Batches formed, by their number of rows (before padding) and by the size they ran at.
        self.batch_sizes: Counter[int] = Counter()
        self.padded_sizes: Counter[int] = Counter()
        self._threads = [
            threading.Thread(
                target=self._run,
                name=f"batch-{version.model_name}-{version.version}-{i}",
                daemon=True,
            )
            for i in range(params.threads)
        ]
        for thread in self._threads:
            thread.start()

    # ---- the request's side ----

    def submit(
        self,
        arrays: Arrays,
        ports: Ports,
        timeout: float | None,
        encode: Encode | None,
    ) -> bytes:
        """Queues a validated request and waits for its reply (or its deadline)."""
        sizes = {array.shape[self._axes[port]] for port, array in arrays.items()}
        if len(sizes) != 1:  # inputs that disagree on the batch size: nothing to merge them with
            return self._version.infer(arrays, ports, timeout, encode)
        rows = sizes.pop()
        if not self._queues and self.params.batch_timeout_micros == 0:
            # Nothing waiting and no batching window: a free infer request runs this request here,
            # in its own thread, as a batch of one (no hand-off to a batch thread).
            reply = self._inline(arrays, ports, encode, rows)
            if reply is not None:
                return reply
        key: Key = (
            tuple(
                (port, array.dtype.str, _without(array.shape, self._axes[port]))
                for port, array in sorted(arrays.items())
            ),
            ports,
        )
        if timeout is not None and timeout > threading.TIMEOUT_MAX:
            timeout = None  # no client deadline: grpcio reports an effectively infinite one
        deadline = None if timeout is None else time.monotonic() + timeout
        task = _Task(key, arrays, rows, encode, deadline)
        limit = self.params.max_batch_size
        with self._cond:
            pending = self._rows.get(key, 0) + rows
            if -(-pending // limit) > self.params.max_enqueued_batches:
                raise batch_queue_full()
            self._queues.setdefault(key, deque()).append(task)
            self._rows[key] = pending
            self._cond.notify()
        if not task.done.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            with self._cond:
                if task.state == _QUEUED:
                    self._dequeue(task)
                if task.state != _DONE:
                    task.state = _ABANDONED
                    raise batch_deadline_exceeded()
        if task.error is not None:
            raise task.error
        assert task.result is not None
        return task.result

    def _inline(
        self, arrays: Arrays, ports: Ports, encode: Encode | None, rows: int
    ) -> bytes | None:
        active = self._version._active
        if active is None:
            return None
        try:
            request = active.pool.take(0.0)
        except (QueueFull, WaitTimedOut):
            return None  # every infer request busy: queue, to join the next batch
        try:
            padded = self.params.padded_size(rows)
            self._count(rows, padded)
            if padded != rows:  # padding needs the batch tensor
                task = _Task((None, ports), arrays, rows, encode, None)
                task.state = _RUNNING
                self._execute(active, request, [task], padded)
                if task.error is not None:
                    raise task.error
                return task.result
            return self._run_one(active, request, arrays, ports, encode, rows)
        finally:
            active.pool.put(request)

    def _infer(
        self,
        active: Compiled,
        request: ov.InferRequest,
        arrays: Arrays,
        ports: Ports,
        rows: int,
        padded: int,
    ) -> list[tuple[str, np.ndarray[Any, Any]]]:
        """One inference of a batch of `rows` rows padded to `padded`: counted once in the metrics, with
        no wait; every output must have the batch's rows on axis 0."""
        metrics = self._version.metrics
        if metrics is not None:
            metrics.batched(rows)
            metrics.infer_started(0)
        inference_ns = None
        try:
            # A batch of one runs on the request's static batch-1 twin (ModelVersion._twins).
            runner = active.infer_request_for(request, arrays)
            outputs, inference_ns = run_inference(runner, arrays, ports)
        finally:
            if metrics is not None:
                metrics.infer_finished(inference_ns)
        if any(out.ndim == 0 or out.shape[0] != padded for _, out in outputs):
            raise batch_output_not_batched()
        return outputs

    def _run_one(
        self,
        active: Compiled,
        request: ov.InferRequest,
        arrays: Arrays,
        ports: Ports,
        encode: Encode | None,
        rows: int,
    ) -> bytes:
        """A batch of one unpadded request: what `_execute` does for it, without a task to complete."""
        version = self._version
        outputs = self._infer(active, request, arrays, ports, rows, rows)
        if encode is not None:
            return encode(outputs)
        return _native.build_predict_response(version.model_name, version.version, outputs)

    def _count(self, rows: int, padded: int) -> None:
        with self._counts:
            self.batch_sizes[rows] += 1
            self.padded_sizes[padded] += 1

    def _dequeue(self, task: _Task) -> None:
        queue = self._queues[task.key]
        queue.remove(task)
        self._rows[task.key] -= task.rows
        if not queue:
            del self._queues[task.key], self._rows[task.key]

    # ---- the batch threads' side ----

    def close(self) -> None:
        """Stops the batch threads once the queue is empty (the version retires: no request in flight)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        log.debug(
            "Batcher of %s version %d closed; batch sizes formed: %s",
            self._version.model_name,
            self._version.version,
            dict(sorted(self.batch_sizes.items())),
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._queues))
                if self._closed and not self._queues:
                    return
            active = self._version._active
            if active is None:
                return
            try:
                request = active.pool.take(None)
            except QueueFull:  # --max_queue_size 0: no waiting line for infer requests
                time.sleep(0.0005)
                continue
            try:
                tasks = self._take_batch()
                if tasks:
                    self._execute(active, request, tasks)
            finally:
                active.pool.put(request)

    def _take_batch(self) -> list[_Task]:
        """The next batch (arrival order within the oldest key), once full or timed out; [] if none."""
        limit = self.params.max_batch_size
        with self._cond:
            while True:
                now = time.monotonic()
                self._expire(now)
                if not self._queues:
                    return []
                key = min(self._queues, key=lambda k: self._queues[k][0].enqueued)
                queue = self._queues[key]
                wait = queue[0].enqueued + self.params.timeout_seconds - now
                if self._rows[key] >= limit or wait <= 0 or self._closed:
                    break
                self._cond.wait(wait)
            tasks: list[_Task] = []
            rows = 0
            while queue and rows + queue[0].rows <= limit:
                task = queue.popleft()
                task.state = _RUNNING
                rows += task.rows
                tasks.append(task)
            self._rows[key] -= rows
            if not queue:
                del self._queues[key], self._rows[key]
        self._count(rows, self.params.padded_size(rows))
        return tasks

    def _expire(self, now: float) -> None:
        """Answers DEADLINE_EXCEEDED for queued tasks whose deadline passed (their handler may still be
        about to notice)."""
        for key in list(self._queues):
            for task in [
                t for t in self._queues[key] if t.deadline is not None and t.deadline <= now
            ]:
                self._dequeue(task)
                task.error = batch_deadline_exceeded()
                task.state = _DONE
                task.done.release()

    def _execute(
        self,
        active: Compiled,
        request: ov.InferRequest,
        tasks: list[_Task],
        padded: int | None = None,
    ) -> None:
        version = self._version
        rows = sum(t.rows for t in tasks)
        if padded is None:
            padded = self.params.padded_size(rows)
        log.debug(
            "Batch of %d rows (%d requests, run at %d) for %s version %d",
            rows,
            len(tasks),
            padded,
            version.model_name,
            version.version,
        )
        try:
            inputs = self._merge(request, tasks, rows, padded)
            ports = tasks[0].key[1]  # the same for every task of a batch: part of its key
            outputs = self._infer(active, request, inputs, ports, rows, padded)
        except BaseException as e:
            for task in tasks:
                self._complete(task, None, e)
            return
        start = 0
        for task in tasks:
            own = [(name, out[start : start + task.rows]) for name, out in outputs]
            start += task.rows
            if task.state == _ABANDONED:
                continue
            try:
                if task.encode is not None:
                    reply = task.encode(own)
                else:
                    reply = _native.build_predict_response(version.model_name, version.version, own)
            except Exception as e:
                self._complete(task, None, e)
                continue
            self._complete(task, reply, None)

    def _merge(
        self, request: ov.InferRequest, tasks: list[_Task], rows: int, padded: int
    ) -> dict[int, np.ndarray[Any, Any]]:
        if len(tasks) == 1 and padded == rows:
            return dict(tasks[0].arrays)
        merged: dict[int, np.ndarray[Any, Any]] = {}
        for port, axis in self._axes.items():
            parts = [t.arrays[port] for t in tasks]
            if axis != 0:  # a slice of a reused buffer would not be contiguous: a fresh array
                if padded > rows:
                    shape = list(parts[0].shape)
                    shape[axis] = padded - rows
                    parts.append(np.zeros(shape, parts[0].dtype))
                merged[port] = np.concatenate(parts, axis=axis)
                continue
            batch = self._buffer(request, port, parts[0], padded)
            np.concatenate(parts, axis=0, out=batch[:rows])
            batch[rows:] = 0
            merged[port] = batch
        return merged

    def _buffer(
        self, request: ov.InferRequest, port: int, row: np.ndarray[Any, Any], padded: int
    ) -> np.ndarray[Any, Any]:
        """`padded` rows of this infer request's batch tensor for `port`, shaped and typed like `row`.
        Only the thread holding the infer request touches its buffers."""
        buffers = self._buffers.get(request)
        if buffers is None:
            with self._counts:
                buffers = self._buffers.setdefault(request, {})
        buffer = buffers.get(port)
        if buffer is None or buffer.dtype != row.dtype or buffer.shape[1:] != row.shape[1:]:
            capacity = self.params.padded_size(self.params.max_batch_size)
            buffer = np.empty((max(capacity, padded), *row.shape[1:]), row.dtype)
            buffers[port] = buffer
        elif buffer.shape[0] < padded:
            buffer = np.empty((padded, *row.shape[1:]), row.dtype)
            buffers[port] = buffer
        return buffer[:padded]

    def _complete(self, task: _Task, reply: bytes | None, error: BaseException | None) -> None:
        with self._cond:
            if task.state == _ABANDONED:
                return
            task.result, task.error = reply, error
            task.state = _DONE
            task.done.release()


def _without(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1 :]
