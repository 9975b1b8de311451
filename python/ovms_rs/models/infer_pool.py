"""A version's infer requests, handed out first come, first served, with a bounded waiting line.

Fairness matters for tail latency: with a plain queue, whichever waiting thread the OS wakes first
(or a request that just arrived) takes a freed infer request, and an unlucky request can wait many
inference times (p99 ~0.9 s at 4 requests in flight on one infer request, against ~60 ms in arrival
order). Here a freed infer request goes straight to the oldest waiter.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

Request = TypeVar("Request")


class QueueFull(Exception):
    """As many requests as allowed already wait."""


class WaitTimedOut(Exception):
    """No infer request became free before the caller's deadline."""


class _Waiter(Generic[Request]):
    __slots__ = ("handed", "request")

    def __init__(self) -> None:
        self.handed = threading.Lock()
        self.handed.acquire()  # released when an infer request has been handed over
        self.request: Request | None = None


class InferRequestPool(Generic[Request]):
    def __init__(self, requests: list[Request], max_waiting: int) -> None:
        self._free = list(requests)
        self._waiters: deque[_Waiter[Request]] = deque()
        self._lock = threading.Lock()
        self._max_waiting = max_waiting

    def take(self, timeout: float | None) -> Request:
        """A free infer request, waiting in line up to `timeout` seconds (None: no limit)."""
        with self._lock:
            if self._free and not self._waiters:
                return self._free.pop()
            if len(self._waiters) >= self._max_waiting:
                raise QueueFull
            waiter: _Waiter[Request] = _Waiter()
            self._waiters.append(waiter)
        if waiter.handed.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            assert waiter.request is not None
            return waiter.request
        with self._lock:
            if waiter.request is None:  # nobody handed one over before the deadline
                self._waiters.remove(waiter)
                raise WaitTimedOut
        return waiter.request  # handed over just as the wait timed out

    def put(self, request: Request) -> None:
        """Returns an infer request: to the oldest waiter if there is one."""
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.request = request
                waiter.handed.release()
            else:
                self._free.append(request)
