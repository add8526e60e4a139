"""A burst of 1,000 concurrent requests against a real uvicorn on Postgres: every one answers
(no 5xx, no timeout) and the service answers normally right after. Before, 100 concurrent
`GET /v1/models` deadlocked the pool: request threads waited on connections held by requests
that were themselves waiting for a thread."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from tests.utils.api_server import api_server

BURST = 1000
THREADS = 16  # small on purpose: far fewer threads and connections than requests in flight
ROUTES = [
    "/models",
    "/files",
    "/fine_tuning/jobs",
    "/models/tiny-llama",
    "/fine_tuning/jobs?limit=5",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """On a database of its own: the session's stack keeps its own base models there."""
    from tests.conftest import fresh_database

    root = tmp_path_factory.mktemp("burst")
    with (
        fresh_database() as database,
        api_server(root, database, api_threads=str(THREADS), requests_per_minute="100000") as s,
    ):
        yield s


async def _burst(server) -> list[tuple[int | str, float]]:
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers(), timeout=120, limits=limits
    ) as client:
        start = asyncio.Event()

        async def one(i: int) -> tuple[int | str, float]:
            await start.wait()
            t0 = time.perf_counter()
            try:
                r = await client.get(ROUTES[i % len(ROUTES)])
                return r.status_code, time.perf_counter() - t0
            except httpx.HTTPError as exc:
                return type(exc).__name__, time.perf_counter() - t0

        tasks = [asyncio.create_task(one(i)) for i in range(BURST)]
        await asyncio.sleep(0)  # one turn of the loop: every task is now at start.wait()
        start.set()
        return await asyncio.gather(*tasks)


@pytest.mark.timeout(300)
def test_a_burst_of_1000_requests_all_answer_and_the_service_recovers(server):
    t0 = time.perf_counter()
    results = asyncio.run(_burst(server))
    wall = time.perf_counter() - t0
    statuses = [s for s, _ in results]
    latencies = sorted(t for _, t in results)
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    print(f"\n{BURST} concurrent requests in {wall:.1f}s: p50 {p50:.2f}s p99 {p99:.2f}s")
    assert statuses.count(200) == BURST, {s: statuses.count(s) for s in set(statuses)}
    # right after, the service answers at once, on the routes that need the database too
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=10) as client:
        assert client.get("/models").status_code == 200  # a hang would time out
        assert client.get("/fine_tuning/jobs").status_code == 200
    assert httpx.get(f"{server.base}/health", timeout=5).json() == {"status": "ok"}
