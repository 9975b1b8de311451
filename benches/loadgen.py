"""Closed-loop gRPC load generator: worker processes pinned to the client core, one channel each.

Its own per-request cost is kept small and measured: requests are serialized once, sent through
`channel.unary_unary(..., request_serializer=None, response_deserializer=None)` (bytes in, bytes out, no
protobuf work per call), and every worker reports its CPU time so the report shows how busy the client
core was. Workers share one ticket counter, so a point is a fixed number of requests (or a time bound,
whichever comes first) spread over `concurrency` requests in flight at all times.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

PREDICT = "/tensorflow.serving.PredictionService/Predict"
MAX_MESSAGE = 1024 * 1024 * 1024


def _worker(conn: Connection, tickets: Any, cpu: int | None) -> None:
    import os

    import grpc

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        os.environ.pop(var, None)
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    calls: dict[str, Any] = {}
    requests: dict[str, list[bytes]] = {}
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            break
        if msg[0] == "requests":
            requests[msg[1]] = msg[2]
            conn.send("ok")
            continue
        _, key, address, count, seconds, warmup, offset = msg
        call = calls.get(address)
        if call is None:
            channel = grpc.insecure_channel(address, options=options)
            call = calls[address] = channel.unary_unary(
                PREDICT, request_serializer=None, response_deserializer=None
            )
        payloads = requests[key]
        errors, first_error = 0, None
        try:
            for i in range(warmup):
                call(payloads[(offset + i) % len(payloads)], timeout=60)
        except grpc.RpcError as e:
            errors, first_error = 1, f"{e.code()}: {e.details()}"
        conn.send(("ready", errors))
        conn.recv()  # go
        latencies: list[int] = []
        cpu0 = time.process_time()
        start = time.perf_counter()
        deadline = start + seconds
        i = offset
        while True:
            with tickets.get_lock():
                ticket = tickets.value
                tickets.value = ticket + 1
            if ticket >= count or time.perf_counter() > deadline:
                break
            payload = payloads[i % len(payloads)]
            i += 1
            t0 = time.perf_counter_ns()
            try:
                call(payload, timeout=60)
            except grpc.RpcError as e:
                errors += 1
                if first_error is None:
                    first_error = f"{e.code()}: {e.details()}"
                continue
            latencies.append(time.perf_counter_ns() - t0)
        end = time.perf_counter()
        conn.send(
            {
                "latencies_ns": latencies,
                "errors": errors,
                "first_error": first_error,
                "start": start,
                "end": end,
                "client_cpu_s": time.process_time() - cpu0,
            }
        )


class LoadGenerator:
    """`workers` processes (the highest concurrency needed), started once and reused for every point."""

    def __init__(self, workers: int, cpu: int | None) -> None:
        ctx = mp.get_context("spawn")  # no fork after grpc is imported
        self.tickets = ctx.Value("q", 0)
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, self.tickets, cpu), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def load(self, key: str, requests: list[bytes]) -> None:
        """Hands every worker the serialized requests of a workload, once."""
        for conn in self.conns:
            conn.send(("requests", key, requests))
        for conn in self.conns:
            conn.recv()

    def run(
        self,
        key: str,
        address: str,
        concurrency: int,
        count: int,
        seconds: float,
        warmup: int,
        on_start: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """One closed-loop point; returns the raw latencies, errors, span and client CPU seconds.
        `on_start` runs once every worker has warmed up, just before the measured requests."""
        conns = self.conns[:concurrency]
        with self.tickets.get_lock():
            self.tickets.value = 0
        for i, conn in enumerate(conns):
            conn.send(("run", key, address, count, seconds, warmup, i))
        warm_errors = sum(conn.recv()[1] for conn in conns)
        if on_start is not None:
            on_start()
        for conn in conns:
            conn.send("go")
        results = [conn.recv() for conn in conns]
        return {
            "latencies_ns": [x for r in results for x in r["latencies_ns"]],
            "errors": warm_errors + sum(r["errors"] for r in results),
            "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
            "start": min(r["start"] for r in results),
            "end": max(r["end"] for r in results),
            "client_cpu_s": sum(r["client_cpu_s"] for r in results),
        }

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
