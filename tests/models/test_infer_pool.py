"""InferRequestPool: arrival order, the waiting-line bound, deadlines (plain objects stand in for infer
requests: the pool never looks inside them)."""

from __future__ import annotations

import threading
import time

import pytest
from ovms_rs.models.infer_pool import InferRequestPool, QueueFull, WaitTimedOut


def _wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_waiters_are_served_in_arrival_order() -> None:
    pool: InferRequestPool[str] = InferRequestPool(["r"], max_waiting=10)
    held = pool.take(None)
    order: list[int] = []
    threads = []
    for i in range(5):

        def wait(i: int = i) -> None:
            request = pool.take(10)
            order.append(i)
            pool.put(request)

        t = threading.Thread(target=wait)
        t.start()
        threads.append(t)
        _wait_until(lambda n=i + 1: len(pool._waiters) == n)
    pool.put(held)
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_a_new_arrival_does_not_overtake_a_waiter() -> None:
    pool: InferRequestPool[str] = InferRequestPool(["r"], max_waiting=10)
    held = pool.take(None)
    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(pool.take(10)))
    t.start()
    _wait_until(lambda: len(pool._waiters) == 1)
    pool.put(held)
    with pytest.raises(WaitTimedOut):
        pool.take(0.05)  # the freed request already belongs to the waiter
    t.join(10)
    assert got == ["r"]


def test_the_waiting_line_is_bounded() -> None:
    pool: InferRequestPool[str] = InferRequestPool(["r"], max_waiting=1)
    pool.take(None)
    outcomes: list[str] = []

    def wait() -> None:
        try:
            pool.take(0.5)
        except WaitTimedOut:
            outcomes.append("timed out")

    t = threading.Thread(target=wait)
    t.start()
    _wait_until(lambda: len(pool._waiters) == 1)
    with pytest.raises(QueueFull):
        pool.take(10)
    t.join(10)
    assert outcomes == ["timed out"]


def test_a_timed_out_waiter_leaves_the_line() -> None:
    pool: InferRequestPool[str] = InferRequestPool(["r"], max_waiting=5)
    held = pool.take(None)
    with pytest.raises(WaitTimedOut):
        pool.take(0.01)
    assert not pool._waiters
    pool.put(held)
    assert pool.take(0) == "r"
