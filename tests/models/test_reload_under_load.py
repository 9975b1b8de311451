"""Versions added and removed and config.json changed while clients send Predict continuously: requests
to AVAILABLE versions succeed, others get OVMS's NOT_FOUND / UNAVAILABLE, none hangs or is lost, and the
server's memory comes back down once a retired version is gone."""

from __future__ import annotations

import collections
import shutil
import threading
import time
from pathlib import Path

import grpc
import numpy as np
from helpers import ServerProcess, output_array, predict_request, tensor_proto
from model_repo import (
    AVAILABLE,
    END,
    demo_repo,
    states,
    tiny_model,
    tiny_repo,
    wait_for,
    write_config,
)

RETIRED = "Model with requested version is retired"
MISSING = "Model with requested version is not found"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Clients:
    """Threads sending Predict in a loop; every call is accounted for."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.stop = threading.Event()
        self.sent = collections.Counter[str]()
        self.outcomes = collections.Counter[tuple[str, str, str]]()
        self.unexpected: list[str] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def run(self, name: str, model: str, version: int | None, check: object) -> None:
        t = threading.Thread(target=self._loop, args=(name, model, version, check), daemon=True)
        self.threads.append(t)
        t.start()

    def _loop(self, name: str, model: str, version: int | None, check: object) -> None:
        stub = self.server.prediction_stub()
        inp = "x" if model.startswith("tiny") else "data"
        shape = (1, 4) if inp == "x" else (1, 3, 224, 224)
        request = predict_request(
            {inp: tensor_proto(np.ones(shape, np.float32))}, model=model, version=version
        )
        while not self.stop.is_set():
            with self.lock:
                self.sent[name] += 1
            try:
                reply = stub.Predict(request, timeout=30)
                outcome = (
                    "OK",
                    str(int(output_array(next(iter(reply.outputs.values()))).ravel()[0])),
                )
            except grpc.RpcError as e:
                outcome = (e.code().name, e.details() or "")
            with self.lock:
                self.outcomes[(name, *outcome)] += 1
                problem = check(outcome)  # type: ignore[operator]
                if problem:
                    self.unexpected.append(f"{name}: {problem}: {outcome}")

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a request hung"


def test_reload_under_load(tmp_path: Path) -> None:
    tiny = tiny_repo(tmp_path / "tiny", [1])
    demo = demo_repo(tmp_path / "demo", [1])
    config = write_config(
        tmp_path / "config.json",
        [
            {"name": "tiny", "base_path": "tiny", "model_version_policy": {"all": {}}},
            {"name": "demo", "base_path": "demo", "model_version_policy": {"all": {}}},
        ],
    )
    with ServerProcess(
        "--config_path", str(config), "--file_system_poll_wait_seconds", "0.5"
    ) as server:
        clients = Clients(server)

        def default_tiny(outcome: tuple[str, str]) -> str | None:
            return (
                None
                if outcome[0] == "OK" and outcome[1] in {"1", "2"}
                else "default version failed"
            )

        def tiny_v1(outcome: tuple[str, str]) -> str | None:
            return (
                None
                if outcome in {("OK", "1"), ("NOT_FOUND", RETIRED)}
                else "unexpected v1 outcome"
            )

        def demo_default(outcome: tuple[str, str]) -> str | None:
            return None if outcome[0] == "OK" else "demo failed"

        def tiny_new(outcome: tuple[str, str]) -> str | None:
            ok = outcome[0] == "OK" or outcome in {
                ("NOT_FOUND", "Model with requested name is not found"),
                ("NOT_FOUND", MISSING),
            }
            return None if ok else "unexpected tiny-new outcome"

        for k in range(2):
            clients.run(f"tiny-default-{k}", "tiny", None, default_tiny)
        clients.run("tiny-v1", "tiny", 1, tiny_v1)
        clients.run("demo", "demo", None, demo_default)
        clients.run("tiny-new", "tiny-new", None, tiny_new)
        time.sleep(1.0)
        rss_before = _rss_kib(server.proc.pid)  # type: ignore[union-attr]

        # a new version, then the old one removed
        tiny_model(tiny / "2", 2.0)
        wait_for(lambda: states(server, "tiny") == {1: AVAILABLE, 2: AVAILABLE}, what="tiny v2")
        shutil.rmtree(tiny / "1")
        wait_for(lambda: states(server, "tiny") == {1: END, 2: AVAILABLE}, what="tiny v1 retired")
        # a second copy of the big model comes and goes
        shutil.copytree(demo / "1", demo / "2")
        wait_for(lambda: states(server, "demo") == {1: AVAILABLE, 2: AVAILABLE}, what="demo v2")
        rss_loaded = _rss_kib(server.proc.pid)  # type: ignore[union-attr]
        shutil.rmtree(demo / "2")
        wait_for(lambda: states(server, "demo") == {1: AVAILABLE, 2: END}, what="demo v2 retired")
        # config.json: a model added, the demo model reconfigured
        tiny_repo(tmp_path / "tiny-new", [5])
        write_config(
            config,
            [
                {"name": "tiny", "base_path": "tiny", "model_version_policy": {"all": {}}},
                {
                    "name": "demo",
                    "base_path": "demo",
                    "model_version_policy": {"all": {}},
                    "nireq": 2,
                },
                {"name": "tiny-new", "base_path": "tiny-new"},
            ],
        )
        wait_for(lambda: states(server, "tiny-new") == {5: AVAILABLE}, what="tiny-new")
        time.sleep(2.0)
        rss_after = _rss_kib(server.proc.pid)  # type: ignore[union-attr]
        clients.finish()

    print(
        f"\nRSS KiB before {rss_before}, with demo v2 {rss_loaded}, after retiring it {rss_after}"
    )
    for key, n in sorted(clients.outcomes.items()):
        print(key, n)
    assert not clients.unexpected, clients.unexpected[:5]
    answered = collections.Counter[str]()
    for (name, *_), n in clients.outcomes.items():
        answered[name] += n
    assert answered == clients.sent, "every request sent got exactly one answer"
    assert clients.outcomes[("tiny-v1", "NOT_FOUND", RETIRED)] > 0
    assert any(k[0] == "tiny-new" and k[1] == "OK" for k in clients.outcomes)
    # The retired copy's memory is given back: the growth it caused is (mostly) gone.
    grown = rss_loaded - rss_before
    assert rss_after - rss_before < max(0.3 * grown, 20_000), (rss_before, rss_loaded, rss_after)
