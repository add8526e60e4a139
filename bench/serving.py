"""Serving throughput and latency: 48 concurrent chat requests spread over 4 LoRA adapters
against the same 48 sent one at a time, for each backend of `lathe inference`, plus the same
load sent straight to the bare vLLM server (Lathe's routing overhead); and resident memory for
16 hot adapters on one shared base against 16 whole-model copies.

The model is the builtin head_dim-64 tiny Llama (`tiny-llama-64`, vLLM's CPU attention needs
head_dim >= 32) with 4 random LoRA adapters (r 8, every projection) stored as a training job
would store them. Requests stream (TTFT = time to the first content chunk), greedy,
`max_tokens` 32; throughput is completion tokens per second of wall time.

Requests go to the inference service's internal API (what the public API relays to). The
vLLM part needs `.venv-vllm` (scripts/install_vllm.sh) and is skipped without it.

    .venv/bin/python bench/serving.py            # both backends, memory
    .venv/bin/python bench/serving.py --no-vllm
    .venv/bin/python bench/serving.py --no-local --no-memory   # vLLM only

Not run in CI: it starts servers and generates for minutes on a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = "tiny-llama-64"
QUESTIONS = ["France", "Japan", "Italy", "Spain", "Peru", "Chile", "Kenya", "Egypt"]


def store_loras(base_dir: Path, objects: Path, n: int) -> list[str]:
    """`n` LoRA artifacts with distinct random weights; returns their storage keys."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    keys = []
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    for i in range(n):
        key = f"bench/lora{i}"
        keys.append(key)
        if (objects / key / "adapter_model.safetensors").exists():
            continue
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(base_dir)
        config = LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(objects / key)
        manifest = {"format": "peft", "adapter_type": "lora", "task": "causal_lm"}
        (objects / key / "lathe_adapter.json").write_text(json.dumps(manifest))
    return keys


def target(key: str | None) -> dict:
    return {
        "id": f"ft:{BASE}:bench:{key}" if key else BASE,
        "base_model": BASE,
        "artifact_key": key,
    }


async def one(
    http: httpx.AsyncClient, url: str, payload: dict, internal: bool
) -> tuple[float, int]:
    """(time to first token, completion tokens) of one streamed request."""
    body = {
        "messages": [{"role": "user", "content": f"What is the capital of {payload['q']}?"}],
        "max_tokens": 32,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if internal:
        request = {"model": payload["target"], "body": {**body, "model": payload["target"]["id"]}}
        path = "/internal/chat/completions"
    else:
        request, path = {**body, "model": payload["name"]}, "/v1/chat/completions"
    start, ttft, tokens = time.perf_counter(), None, 0
    async with http.stream("POST", url + path, json=request) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and any(c["delta"].get("content") for c in chunk["choices"]):
                ttft = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return ttft or (time.perf_counter() - start), tokens


async def load(url: str, payloads: list[dict], concurrent: bool, internal: bool) -> dict:
    async with httpx.AsyncClient(timeout=600) as http:
        start = time.perf_counter()
        if concurrent:
            results = await asyncio.gather(*(one(http, url, p, internal) for p in payloads))
        else:
            results = [await one(http, url, p, internal) for p in payloads]
        wall = time.perf_counter() - start
    ttfts = sorted(t for t, _ in results)
    tokens = sum(n for _, n in results)
    return {
        "tokens_per_s": tokens / wall,
        "ttft_p50_ms": 1000 * statistics.median(ttfts),
        "ttft_p99_ms": 1000 * ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))],
        "tokens": tokens,
        "wall_s": wall,
    }


def payloads(keys: list[str], names: list[str], n: int = 48) -> list[dict]:
    return [
        {
            "target": target(keys[i % len(keys)]),
            "name": names[i % len(names)],
            "q": QUESTIONS[i % len(QUESTIONS)],
        }
        for i in range(n)
    ]


def start_inference(env: dict, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "inference", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise TimeoutError(log.read_text()[-2000:])


def run_backend(env: dict, keys: list[str], tmp: Path, vllm: bool) -> dict:
    from core.inference.backends.vllm import free_port
    from core.inference.pool import adapter_name
    from core.model_store import StoredModel

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_inference(env, port, tmp / f"inference-{'vllm' if vllm else 'local'}.log")
    try:
        if vllm:
            deadline = time.monotonic() + 1800  # a busy CPU: vLLM took 10 min to start
            while not httpx.get(f"{url}/internal/stats").json()["vllm"].get(BASE, {}).get("ready"):
                if time.monotonic() > deadline:
                    raise TimeoutError("vLLM did not come up")
                time.sleep(2)
        names = [adapter_name(StoredModel(target(k)["id"], BASE, k)) for k in keys]
        work = payloads(keys, names)
        asyncio.run(load(url, work[: len(keys)], concurrent=False, internal=True))  # warm up
        out = {
            "one_at_a_time": asyncio.run(load(url, work, concurrent=False, internal=True)),
            "concurrent": asyncio.run(load(url, work, concurrent=True, internal=True)),
            "backend_stats": httpx.get(f"{url}/internal/stats").json(),
        }
        if vllm:
            bare = out["backend_stats"]["vllm"][BASE]["url"]
            out["bare_vllm_concurrent"] = asyncio.run(
                load(bare, work, concurrent=True, internal=False)
            )
        return out
    finally:
        proc.terminate()
        proc.wait(60)


MEMORY_SCRIPT = """
import json, sys, psutil, torch
from pathlib import Path
torch.set_num_threads(1)
from peft import PeftModel
from transformers import AutoModelForCausalLM
from core.model_store import load_artifact
base_dir, objects, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
keys = [f"bench/lora{i}" for i in range(16)]
AutoModelForCausalLM.from_pretrained(base_dir)  # libraries loaded: only the models count
before = psutil.Process().memory_info().rss
if mode == "shared":
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(base, objects / keys[0], adapter_name="a0")
    for i, k in enumerate(keys[1:], 1):
        model.load_adapter(objects / k, adapter_name=f"a{i}")
    held = [model]
else:
    held = [load_artifact(base_dir, objects / k) for k in keys]
print(json.dumps({"rss_mib": (psutil.Process().memory_info().rss - before) / 2**20}))
"""


def memory(base_dir: Path, objects: Path) -> dict:
    out = {}
    for mode in ("shared", "copies"):
        r = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(base_dir), str(objects), mode],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        out[mode] = json.loads(r.stdout.strip().splitlines()[-1])["rss_mib"]
    out["ratio_copies_over_shared"] = out["copies"] / out["shared"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-vllm", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-local", action="store_true", help="skip the in-process backend")
    args = parser.parse_args()
    from core.tiny_model import ensure_tiny_llama

    tmp = Path(tempfile.mkdtemp(prefix="lathe-bench-serving-"))
    cache, objects = tmp / "models", tmp / "objects"
    base_dir = ensure_tiny_llama(cache / BASE, builder=BASE)
    keys = store_loras(base_dir, objects, 16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATHE_")}
    env.update(
        LATHE_DATA_DIR=str(tmp / "data"),
        LATHE_STORAGE_URL=f"file://{objects}",
        LATHE_MODEL_CACHE_DIR=str(cache),
        LATHE_BASE_MODELS=json.dumps({BASE: {"source": "builtin"}}),
        LATHE_INFERENCE_MAX_BATCH="48",
        LATHE_LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
    )
    report: dict = {"load_average_before": os.getloadavg()}
    if not args.no_local:
        report["in_process"] = run_backend(env, keys[:4], tmp, vllm=False)
    vllm_python = ROOT / ".venv-vllm" / "bin" / "python"
    if not args.no_vllm and vllm_python.exists():
        vllm_env = {
            **env,
            "LATHE_VLLM_ENABLED": "true",
            "LATHE_VLLM_PYTHON": str(vllm_python),
            "LATHE_VLLM_MAX_MODEL_LEN": "512",
            "LATHE_VLLM_START_TIMEOUT_S": "1800",
        }
        report["vllm"] = run_backend(vllm_env, keys[:4], tmp, vllm=True)
    if not args.no_memory:
        report["memory_16_adapters_mib"] = memory(base_dir, objects)
    for name in ("in_process", "vllm"):
        if name in report:
            r = report[name]
            r["speedup_concurrent_over_one_at_a_time"] = (
                r["concurrent"]["tokens_per_s"] / r["one_at_a_time"]["tokens_per_s"]
            )
            if "bare_vllm_concurrent" in r:
                r["lathe_over_bare_vllm"] = (
                    r["concurrent"]["tokens_per_s"] / r["bare_vllm_concurrent"]["tokens_per_s"]
                )
    if "in_process" in report:
        stats = report["in_process"].pop("backend_stats")["in_process"]
        report["in_process"]["engine"] = {k: stats[k] for k in ("batch_sizes", "joined")}
        report["in_process"]["engine"]["max_rows_per_step"] = stats["max_batch_size"]
    report.get("vllm", {}).pop("backend_stats", None)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
