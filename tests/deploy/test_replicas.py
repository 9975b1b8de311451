"""Three replicas behind a real load balancer (HAProxy, from the distribution's packages).

Three `ovms_rs serve` processes on 127.0.0.1 share one model repository; HAProxy balances gRPC (HTTP/2
cleartext, `proto h2`) and REST, with active checks on each replica's `/v2/health/ready` every 200 ms
(`fall 1 rise 2`). Compiled clients keep a steady load on the balancer: the project's HTTP/2 load
generator (benches/loadgen, no retries) for gRPC and wrk (a Lua script checks every reply) for REST,
beside clients with a retry policy (grpcio with a service-config retryPolicy on UNAVAILABLE; REST
retrying connection errors and 502/503/504). Then:

- rolling restart: SIGTERM each replica in turn (readiness is 503 at once; `--drain_seconds 1` keeps it
  serving while HAProxy takes it out), start it again: 0 failed requests, with or without retries;
- `kill -9` of one replica: the clients without retries fail at most two calls per connection (the
  request in flight on it, and one HAProxy put on a pooled connection to it before the check saw it
  gone), clients with a retry policy see 0 failures, HAProxy marks it DOWN within its check
  interval and sends it nothing more; restarted, it rejoins and takes traffic again;
- a version added to the shared repository is served by every replica (asked directly) within the poll
  interval plus the load time.

Figures per phase (requests, failures, p50/p99) are printed (`-s`) and kept in RELIABILITY.md.

Skipped when haproxy, wrk or cargo (to build benches/loadgen) is missing, except in CI (CI=true), where
that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from helpers import ServerProcess, env_without_proxy, free_port, predict_request, tensor_proto
from model_repo import ask_tiny, tiny_model, tiny_repo, wait_for

ROOT = Path(__file__).resolve().parents[2]
MODEL = "tiny"
CHECK_INTER_S = 0.2
DRAIN_S = 1.0
POLL_S = 1.0
GRPC_CONCURRENCY = 4  # compiled gRPC client: connections, one request in flight on each
REST_CONNECTIONS = 4  # wrk
IN_CI = os.environ.get("CI") == "true"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def _tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
    )
    if path is None:
        reason = f"{name} not installed (apt-get install -y {name})"
        if IN_CI:
            pytest.fail(f"{reason}: CI=true, so this test must run")
        pytest.skip(reason)
    return path


class Replica(ServerProcess):
    """A replica on fixed ports, so that a restarted one comes back where the balancer expects it."""

    def __init__(self, grpc_port: int, rest_port: int, *args: str, log_path: Path) -> None:
        super().__init__(*args, log_path=log_path, rest=True)
        self.port, self.rest_port = grpc_port, rest_port
        self.rest_url = f"http://127.0.0.1:{rest_port}"
        self.args = [
            "--port",
            str(grpc_port),
            "--grpc_bind_address",
            "127.0.0.1",
            "--rest_port",
            str(rest_port),
            "--rest_bind_address",
            "127.0.0.1",
            *args,
        ]


HAPROXY_CFG = """\
global
    maxconn 1000
    stats socket {sock} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    # A connection refused (a replica not yet seen DOWN) is retried on another one; a request already
    # sent is not retried by the balancer: its failure reaches the client.
    retries 3
    option redispatch
    default-server inter {inter}ms fall 1 rise 2

frontend grpc_in
    bind 127.0.0.1:{grpc_port} proto h2
    default_backend grpc_replicas

frontend rest_in
    bind 127.0.0.1:{rest_port}
    default_backend rest_replicas

backend grpc_replicas
    balance roundrobin
    option httpchk GET /v2/health/ready
    http-check expect status 200
{grpc_servers}

backend rest_replicas
    balance roundrobin
    option httpchk GET /v2/health/ready
    http-check expect status 200
{rest_servers}
"""


class Balancer:
    """haproxy -db with a generated config, and its stats socket."""

    def __init__(self, directory: Path, replicas: list[Replica]) -> None:
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.sock = directory / "haproxy.sock"
        cfg = HAPROXY_CFG.format(
            sock=self.sock,
            inter=int(CHECK_INTER_S * 1000),
            grpc_port=self.grpc_port,
            rest_port=self.rest_port,
            grpc_servers="\n".join(
                f"    server r{i} 127.0.0.1:{r.port} proto h2 check port {r.rest_port}"
                for i, r in enumerate(replicas)
            ),
            rest_servers="\n".join(
                f"    server r{i} 127.0.0.1:{r.rest_port} check" for i, r in enumerate(replicas)
            ),
        )
        self.cfg = directory / "haproxy.cfg"
        self.cfg.write_text(cfg)
        self.log = directory / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, haproxy: str) -> None:
        subprocess.run([haproxy, "-c", "-q", "-f", str(self.cfg)], check=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [haproxy, "-f", str(self.cfg), "-db"], stdout=out, stderr=out
            )
        wait_for(self._all_up, 30, "haproxy up")

    def _all_up(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            return len(self.up("grpc_replicas")) == 3
        except (FileNotFoundError, ConnectionRefusedError):
            return False  # haproxy binds its stats socket's file before it listens on it

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.sock))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().strip().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {(r["pxname"], r["svname"]): r for r in rows}

    def up(self, backend: str) -> set[str]:
        return {
            sv
            for (px, sv), row in self.stats().items()
            if px == backend and sv.startswith("r") and row["status"].startswith("UP")
        }

    def sent(self, server: str) -> int:
        """Requests (sessions) sent to one replica, both backends together."""
        stats = self.stats()
        return sum(int(stats[(b, server)]["stot"]) for b in ("grpc_replicas", "rest_replicas"))

    def errors(self, server: str) -> dict[str, str]:
        """HAProxy's error, retry and redispatch counters for one replica, per backend."""
        stats = self.stats()
        keys = ("econ", "eresp", "wretr", "wredis", "cli_abrt", "srv_abrt")
        return {
            b.split("_")[0]: " ".join(f"{k}={stats[(b, server)][k] or 0}" for k in keys)
            for b in ("grpc_replicas", "rest_replicas")
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


WRK_LUA = """\
wrk.method = "POST"
wrk.body = '{"instances": [[1, 1, 1, 1]]}'
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"predictions"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "bad": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "p50_us": %d, "p99_us": %d}\\n', summary.requests, b, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "tensorflow.serving.PredictionService"}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def _percentiles(latencies_s: list[float]) -> tuple[float, float]:
    if not latencies_s:
        return float("nan"), float("nan")
    a = np.array(latencies_s) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


class CompiledGrpcClient:
    """benches/loadgen's compiled HTTP/2 client (built by cargo, as benches/loadgen_native.py does),
    driven over its stdin/stdout protocol: closed-loop runs, each reporting latencies and failures."""

    def __init__(self, binary: Path, directory: Path, requests_: list[bytes]) -> None:
        self.proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        path = directory / "requests.bin"
        with path.open("wb") as f:
            for r in requests_:
                f.write(len(r).to_bytes(4, "little") + r)
        self._command(f"load tiny {path}")

    def _command(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply and not reply.startswith("error"), f"loadgen: {line!r} -> {reply!r}"
        return reply

    def run(self, address: str, concurrency: int, seconds: float) -> dict[str, Any]:
        self._command(f"run tiny {address} {PREDICT} {concurrency} {10**9} {seconds} 0")
        result: dict[str, Any] = json.loads(self._command("go"))
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class Load:
    """Steady load on the balancer while a `with` block runs; figures per client when it ends."""

    def __init__(
        self, balancer: Balancer, loadgen: CompiledGrpcClient, wrk: str, lua: Path
    ) -> None:
        self.balancer, self.loadgen, self.wrk, self.lua = balancer, loadgen, wrk, lua

    @contextmanager
    def running(self, phase: str, report: list[dict[str, Any]]) -> Iterator[None]:
        stop = threading.Event()
        figures: dict[str, dict[str, Any]] = {}
        threads = [
            threading.Thread(target=self._compiled_grpc, args=(stop, figures)),
            threading.Thread(target=self._retrying_grpc, args=(stop, figures)),
            threading.Thread(target=self._retrying_rest, args=(stop, figures)),
        ]
        wrk = subprocess.Popen(
            [
                self.wrk,
                "-t1",
                f"-c{REST_CONNECTIONS}",
                "-d300s",
                "--timeout",
                "10s",
                "-s",
                str(self.lua),
                f"http://127.0.0.1:{self.balancer.rest_port}/v1/models/{MODEL}:predict",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env_without_proxy(),
        )
        for t in threads:
            t.start()
        started = time.monotonic()
        try:
            yield
        finally:
            stop.set()
            wrk.send_signal(signal.SIGINT)  # wrk stops and reports
            out, _ = wrk.communicate(timeout=30)
            for t in threads:
                t.join(timeout=60)
        seconds = time.monotonic() - started
        line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
        assert line is not None, f"wrk: {out}"
        w = json.loads(line[8:])
        figures["REST wrk (no retry)"] = {
            "requests": w["requests"],
            "failed": w["bad"] + w["connect"] + w["read"] + w["write"] + w["timeout"],
            "p50_ms": w["p50_us"] / 1000,
            "p99_ms": w["p99_us"] / 1000,
            "first_error": None
            if w["requests"] == 0
            or w["bad"] + w["connect"] + w["read"] + w["write"] + w["timeout"] == 0
            else (
                f"non-200 or wrong replies {w['bad']}; socket errors connect {w['connect']}, read "
                f"{w['read']}, write {w['write']}, timeout {w['timeout']}"
            ),
        }
        for client, f in figures.items():
            report.append({"phase": phase, "client": client, "seconds": round(seconds, 1), **f})

    def _compiled_grpc(self, stop: threading.Event, figures: dict[str, dict[str, Any]]) -> None:
        """The compiled HTTP/2 client in back-to-back 1 s runs (each opens its connections afresh)."""
        latencies: list[float] = []
        errors, first_error = 0, None
        address = f"127.0.0.1:{self.balancer.grpc_port}"
        while not stop.is_set():
            result = self.loadgen.run(address, GRPC_CONCURRENCY, 1.0)
            latencies += [ns / 1e9 for ns in result["latencies_ns"]]
            errors += result["errors"]
            first_error = first_error or result["first_error"]
        p50, p99 = _percentiles(latencies)
        figures["gRPC compiled (no retry)"] = {
            "requests": len(latencies) + errors,
            "failed": errors,
            "p50_ms": p50,
            "p99_ms": p99,
            "first_error": first_error,
        }

    def _retrying_grpc(self, stop: threading.Event, figures: dict[str, dict[str, Any]]) -> None:
        from ovms_rs._proto.tensorflow_serving.apis import prediction_service_pb2_grpc

        request = predict_request({"x": tensor_proto(np.ones((1, 4), np.float32))}, model=MODEL)
        latencies: list[float] = []
        failed, first_error = 0, None
        options = [("grpc.enable_retries", 1), ("grpc.service_config", RETRY_SERVICE_CONFIG)]
        with grpc.insecure_channel(
            f"127.0.0.1:{self.balancer.grpc_port}", options=options
        ) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    stub.Predict(request, timeout=10)
                    latencies.append(time.perf_counter() - t0)
                except grpc.RpcError as e:
                    failed += 1
                    first_error = first_error or f"{e.code()}: {e.details()}"
        p50, p99 = _percentiles(latencies)
        figures["gRPC grpcio, retryPolicy"] = {
            "requests": len(latencies) + failed,
            "failed": failed,
            "p50_ms": p50,
            "p99_ms": p99,
            "first_error": first_error,
        }

    def _retrying_rest(self, stop: threading.Event, figures: dict[str, dict[str, Any]]) -> None:
        url = f"http://127.0.0.1:{self.balancer.rest_port}/v1/models/{MODEL}:predict"
        body = json.dumps({"instances": [[1, 1, 1, 1]]})
        latencies: list[float] = []
        failed, first_error = 0, None
        with requests.Session() as session:
            session.trust_env = False
            while not stop.is_set():
                t0 = time.perf_counter()
                error = None
                for _attempt in range(5):
                    try:
                        r = session.post(url, data=body, timeout=10)
                    except requests.ConnectionError as e:
                        error = repr(e)
                    else:
                        if r.status_code == 200 and "predictions" in r.json():
                            error = None
                            break
                        error = f"HTTP {r.status_code}: {r.text[:200]}"
                        if r.status_code not in (502, 503, 504):
                            break
                    time.sleep(0.05)
                if error is None:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failed += 1
                    first_error = first_error or error
        p50, p99 = _percentiles(latencies)
        figures["REST requests, retry"] = {
            "requests": len(latencies) + failed,
            "failed": failed,
            "p50_ms": p50,
            "p99_ms": p99,
            "first_error": first_error,
        }


def _start_all(replicas: list[Replica]) -> None:
    errors: list[BaseException] = []

    def start(r: Replica) -> None:
        try:
            r.start()
        except BaseException as e:  # re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=start, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _wait_balanced(balancer: Balancer, server: str, up: bool, timeout: float) -> None:
    """Until the server is UP in both backends (`up`), or DOWN in both."""

    def reached() -> bool:
        grpc_up, rest_up = balancer.up("grpc_replicas"), balancer.up("rest_replicas")
        return (
            (server in grpc_up and server in rest_up)
            if up
            else not ({server} & (grpc_up | rest_up))
        )

    wait_for(reached, timeout, f"{server} {'UP' if up else 'DOWN'} in haproxy")


def _ready(r: Replica) -> int:
    return requests.get(f"{r.rest_url}/v2/health/ready", timeout=5).status_code


def _print_report(report: list[dict[str, Any]], events: list[str]) -> None:
    print("\n| phase | client | s | requests | failed | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in report:
        print(
            f"| {row['phase']} | {row['client']} | {row['seconds']} | {row['requests']} | {row['failed']} "
            f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    for row in report:
        if row.get("first_error"):
            print(f"- {row['phase']}, {row['client']}: first failure: {row['first_error']}")
    for event in events:
        print(f"- {event}")


def test_replicas_behind_haproxy(tmp_path: Path) -> None:
    haproxy, wrk = _tool("haproxy"), _tool("wrk")
    sys.path.insert(0, str(ROOT))
    try:
        from benches.loadgen_native import build
    finally:
        sys.path.remove(str(ROOT))
    repo = tiny_repo(tmp_path / "repo" / MODEL, [1])
    args = (
        "--model_name",
        MODEL,
        "--model_path",
        str(repo),
        "--file_system_poll_wait_seconds",
        str(POLL_S),
        "--drain_seconds",
        str(DRAIN_S),
        "--plugin_config",
        '{"INFERENCE_NUM_THREADS": 1}',
    )
    ports = [(free_port(), free_port()) for _ in range(3)]
    starts = [0, 0, 0]

    def replica(i: int) -> Replica:
        starts[i] += 1
        return Replica(*ports[i], *args, log_path=tmp_path / f"r{i}.{starts[i]}.log")

    replicas = [replica(i) for i in range(3)]
    balancer = Balancer(tmp_path, replicas)
    lua = tmp_path / "predict.lua"
    lua.write_text(WRK_LUA)
    loadgen = None
    report: list[dict[str, Any]] = []
    events: list[str] = []
    try:
        _start_all(replicas)
        balancer.start(haproxy)
        request = predict_request({"x": tensor_proto(np.ones((1, 4), np.float32))}, model=MODEL)
        try:
            binary = build()
        except RuntimeError as e:  # no cargo
            if IN_CI:
                raise
            pytest.skip(f"the compiled gRPC client cannot be built: {e}")
        loadgen = CompiledGrpcClient(binary, tmp_path, [request.SerializeToString()])
        load = Load(balancer, loadgen, wrk, lua)

        with load.running("before", report):
            time.sleep(3)

        # Rolling restart: SIGTERM, 503 at once, DOWN in the balancer, the process exits; start it again.
        with load.running("rolling restart", report):
            time.sleep(0.5)
            for i in range(3):
                old = replicas[i]
                assert old.proc is not None
                t0 = time.monotonic()
                old.proc.send_signal(signal.SIGTERM)
                # "At once": as soon as the server's signal handler has run (Python runs it between
                # bytecodes of the main thread: milliseconds, more on a loaded machine).
                while _ready(old) != 503:
                    assert time.monotonic() - t0 < 1.0, "readiness still 200 a second after SIGTERM"
                    time.sleep(0.01)
                not_ready = time.monotonic() - t0
                _wait_balanced(balancer, f"r{i}", False, 5)
                down = time.monotonic() - t0
                assert old.proc.wait(timeout=40) == 0, old.log()
                exited = time.monotonic() - t0
                old.stop()
                replicas[i] = replica(i).start()
                _wait_balanced(balancer, f"r{i}", True, 10)
                events.append(
                    f"rolling restart r{i}: 503 after {not_ready * 1000:.0f} ms; DOWN in haproxy after {down:.2f} s; exited after "
                    f"{exited:.2f} s; UP again {time.monotonic() - t0:.2f} s after the SIGTERM"
                )
            time.sleep(0.5)
        with load.running("after rolling restart", report):
            time.sleep(3)

        # kill -9: in-flight requests on it fail; DOWN within the check interval; nothing sent after.
        with load.running("kill -9", report):
            time.sleep(1)
            victim = replicas[1]
            assert victim.proc is not None
            t0 = time.monotonic()
            victim.proc.kill()
            _wait_balanced(balancer, "r1", False, 5)
            down = time.monotonic() - t0
            sent_at_down = balancer.sent("r1")
            counters = balancer.errors("r1")
            victim.proc.wait()
            time.sleep(1)
            sent_later = balancer.sent("r1")
            victim.stop()
            replicas[1] = replica(1).start()
            _wait_balanced(balancer, "r1", True, 10)
            rejoined = time.monotonic() - t0
            before_rejoin = balancer.sent("r1")
            time.sleep(1)
            after_rejoin = balancer.sent("r1")
            events.append(
                f"kill -9 r1: DOWN in haproxy after {down:.2f} s (check every {CHECK_INTER_S} s); "
                f"requests sent to it in the next 1 s: {sent_later - sent_at_down}; restarted and UP "
                f"{rejoined:.2f} s after the kill; requests it took in its first 1 s back: "
                f"{after_rejoin - before_rejoin}; haproxy's counters for it at DOWN: {counters}"
            )
        with load.running("after kill -9", report):
            time.sleep(3)

        # A version added to the shared repository: every replica (asked directly) serves it.
        with load.running("version 2 added", report):
            time.sleep(0.5)
            staging = tmp_path / "staging"
            tiny_model(staging / "2", 2.0)
            t0 = time.monotonic()
            (staging / "2").rename(repo / "2")  # appears whole
            seen: dict[int, float] = {}
            for i, r in enumerate(replicas):
                wait_for(lambda r=r: ask_tiny(r, MODEL) == 2.0, POLL_S + 10, f"version 2 on r{i}")  # type: ignore[misc]
                seen[i] = time.monotonic() - t0
            events.append(
                "version 2 served by "
                + ", ".join(f"r{i} after {s:.2f} s" for i, s in seen.items())
                + f" (poll every {POLL_S} s)"
            )
            time.sleep(0.5)
    finally:
        if loadgen is not None:
            loadgen.close()
        balancer.stop()
        for r in replicas:
            r.stop()

    _print_report(report, events)
    (tmp_path / "report.json").write_text(json.dumps({"rows": report, "events": events}, indent=1))
    by = {(row["phase"], row["client"]): row for row in report}
    for (phase, client), row in by.items():
        assert row["requests"] > 0, (phase, client)
        if phase == "kill -9" and "no retry" in client:
            # What was in flight on the killed replica, and what HAProxy sent on a pooled connection
            # to it before DOWN: each client connection has one request in flight at a time, so at
            # most two per connection. (One per connection was too tight: a CI run saw 5 on 4.)
            limit = 2 * (GRPC_CONCURRENCY if client.startswith("gRPC") else REST_CONNECTIONS)
            assert row["failed"] <= limit, row
        else:
            assert row["failed"] == 0, row
    assert sent_later == sent_at_down, "haproxy kept sending to the killed replica"
    assert after_rejoin > before_rejoin, "the restarted replica took no traffic"
    assert down <= CHECK_INTER_S + 1.0
    assert all(s <= POLL_S + 10 for s in seen.values())
