"""Refused large REST bodies are freed with the request: sequential 40 MB predict bodies that fail
validation leave the server's RSS flat (a reference cycle through the exception once kept each body
and its parsed arrays until the cyclic GC ran: +105 MB per 72 MB request)."""

from __future__ import annotations

from pathlib import Path

import requests
from helpers import DEMO, ServerProcess
from reliability_support import rss_mb

REQUESTS = 5
# After the first two requests (arenas and buffers warm), RSS may move by this much at most; one
# retained 40 MB body with its arrays is about 60 MB.
GROWTH_LIMIT_MB = 32.0


def test_sequential_refused_large_bodies_do_not_grow_rss(tmp_path: Path) -> None:
    body = ('{"instances": [' + ",".join(["123.456"] * 5_000_000) + "]}").encode()  # 40 MB
    with ServerProcess(log_path=tmp_path / "server.log", rest=True) as server:
        assert server.proc is not None
        session = requests.Session()
        figures = []
        for _ in range(REQUESTS):
            reply = session.post(
                f"{server.rest_url}/v1/models/{DEMO}:predict", data=body, timeout=120
            )
            assert reply.status_code == 400, (
                reply.text
            )  # a [9000000] tensor for a [1,3,224,224] input
            figures.append(rss_mb(server.proc.pid))
        session.close()
    growth = figures[-1] - figures[1]
    assert growth < GROWTH_LIMIT_MB, f"RSS after each request (MB): {figures}"
