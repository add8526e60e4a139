"""Batch API benchmark, on the in-process engine of `lathe inference`:

1. throughput: N completion requests run as a batch runs them (worker.batches.run_requests:
   `batch_concurrency` in flight, marked `batch`) against the same N sent all at once as
   live requests; prints requests/s of each and their ratio;
2. live latency: the p50 of live requests sent one after another, alone, then while a
   1,000-request batch runs, then while the same 1,000 run as live requests at the batch's
   concurrency (what the `batch` priority buys); prints the ratios.

    .venv/bin/python bench/batch.py [--n 200] [--batch 1000] [--live 30] [--batch-tokens 64]

Not run in CI: it starts the inference service and generates for minutes on a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import start_inference  # noqa: E402

BASE = "tiny-llama"
MODEL = SimpleNamespace(id=BASE, base_model=BASE, artifact_key=None, kind="base")


def body(i: int, max_tokens: int = 16) -> dict:
    return {"model": BASE, "prompt": [f"Request {i}: the capital of"], "max_tokens": max_tokens,
            "temperature": 0, "n": 1, "stream": False}  # fmt: skip


async def live_one(http: httpx.AsyncClient, url: str, i: int, max_tokens: int = 16) -> float:
    payload = {"model": {"id": BASE, "base_model": BASE, "artifact_key": None},
               "body": body(i, max_tokens)}  # fmt: skip
    start = time.perf_counter()
    r = await http.post(f"{url}/internal/completions", json=payload)
    r.raise_for_status()
    return time.perf_counter() - start


async def as_batch(settings, n: int, offset: int = 0, max_tokens: int = 16) -> float:
    """Wall time of `n` requests run the way a batch's worker runs them."""
    from worker.batches import run_requests

    ready = [(i, f"c{i}", MODEL, body(offset + i, max_tokens)) for i in range(n)]
    start = time.perf_counter()
    results = await run_requests(settings, "/v1/completions", ready)
    assert all(ok for ok, _ in results.values()), "batch requests failed"
    return time.perf_counter() - start


async def as_live(
    url: str, n: int, concurrency: int | None = None, offset: int = 0, max_tokens: int = 16
) -> float:
    gate = asyncio.Semaphore(concurrency or n)
    async with httpx.AsyncClient(timeout=600) as http:

        async def one(i: int) -> None:
            async with gate:
                await live_one(http, url, offset + i, max_tokens)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - start


async def live_p50(url: str, count: int, max_tokens: int = 8) -> float:
    async with httpx.AsyncClient(timeout=600) as http:
        times = [await live_one(http, url, 10_000 + i, max_tokens) for i in range(count)]
    return statistics.median(times) * 1000


async def p50_during(url: str, background, count: int) -> float:
    task = asyncio.create_task(background)
    await asyncio.sleep(2)  # the background load is running before the first live request
    try:
        return await live_p50(url, count)
    finally:
        task.cancel()
        with_suppressed = asyncio.gather(task, return_exceptions=True)
        await with_suppressed


async def run(url: str, settings, args) -> dict:
    await as_live(url, 8)  # warm up: the model loaded, first batches run
    batch_s = await as_batch(settings, args.n)
    live_s = await as_live(url, args.n)
    before = await live_p50(url, args.live)
    long = args.batch_tokens
    during_batch = await p50_during(url, as_batch(settings, args.batch, 50_000, long), args.live)
    during_live = await p50_during(
        url, as_live(url, args.batch, settings.batches.concurrency, 60_000, long), args.live
    )
    alone = (before + await live_p50(url, args.live)) / 2  # before and after: the machine drifts
    return {
        "requests": args.n,
        "batch_requests_per_s": args.n / batch_s,
        "concurrent_live_requests_per_s": args.n / live_s,
        "batch_over_concurrent_throughput": live_s / batch_s,
        "live_p50_ms_alone": alone,
        "live_p50_ms_during_batch": during_batch,
        "live_p50_ms_during_same_load_as_live": during_live,
        "p50_ratio_during_batch_over_alone": during_batch / alone,
        "p50_ratio_during_live_load_over_alone": during_live / alone,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--live", type=int, default=30)
    parser.add_argument("--batch-tokens", type=int, default=64, help="max_tokens of the 1,000")
    args = parser.parse_args()
    from core.inference.backends.vllm import free_port
    from core.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="lathe-bench-batch-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATHE_")}
    env.update(
        LATHE_DATA_DIR=str(tmp / "data"),
        LATHE_STORAGE_URL=f"file://{tmp / 'objects'}",
        LATHE_MODEL_CACHE_DIR=str(tmp / "models"),
        LATHE_BASE_MODELS=json.dumps({BASE: {"source": "builtin"}}),
        LATHE_INFERENCE_MAX_BATCH="32",
        LATHE_INFERENCE_MAX_QUEUE="4096",
        LATHE_LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_inference(env, port, tmp / "inference.log")
    try:
        settings = Settings(inference={"url": url})
        report = {"load_average_before": os.getloadavg(), **asyncio.run(run(url, settings, args))}
    finally:
        proc.terminate()
        proc.wait(30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
