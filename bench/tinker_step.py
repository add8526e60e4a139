"""Tinker API overhead: tokens/s of forward_backward + optim_step through the `tinker` SDK
against a running Lathe (API + trainer), over the same steps run in this process on the same
model with the trainer's own code (core.tinker.engine), and sampling tokens/s both ways.

The ratio (in-process time / SDK time) is what the wire, the Postgres futures and the wakeups
cost; the issue's target is >= 0.8 on a step big enough that compute dominates. The two sides
alternate call by call and each reports its median (a shared host's load swings then hit both
alike); the load average is printed with the result.

`--start PG_URL` starts its own Lathe for the run, the way tests/tinker does: a fresh
database on that Postgres server (dropped afterwards), `lathe serve` and one
`python -m worker.tinker_trainer`, whose torch uses `--threads` threads like this process
does, so both sides compute alike (on a CPU host with other load, torch's default of one
thread per core thrashes: give both sides the same small number). Or point `--url/--key` at
a running Lathe and start its trainer with OMP_NUM_THREADS=`--threads` yourself.

Two sizes are worth reading (numbers in docs/guides/tinker.md#performance):

* the tiny step, `--batch 8 --len 128` (the default): tens of ms of compute on tiny-llama,
  so the ~ms of fixed cost per request (4 HTTP calls, their transactions, 2 process wakeups
  per step) are a visible share of it;
* a step that costs ~0.5-1 s in-process (`--batch 32 --len 256 --samples 16
  --sample-tokens 128`): what a real model's step looks like to the wire.

    PG=postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/tinker_step.py --start $PG
    .venv/bin/python bench/tinker_step.py --start $PG --batch 32 --len 256 --samples 16 \
        --sample-tokens 128 --steps 12
    .venv/bin/python bench/tinker_step.py --url http://127.0.0.1:8000 --key tml-lathe-...

Not run in CI: it trains for a minute or more on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def batch(n: int, length: int, vocab: int, seed: int = 0):
    import tinker

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        toks = rng.integers(10, vocab, length + 1)
        out.append(
            tinker.Datum(
                model_input=tinker.ModelInput.from_ints(toks[:-1].tolist()),
                loss_fn_inputs={
                    "target_tokens": toks[1:].astype(np.int64),
                    "weights": np.ones(length, dtype=np.float32),
                },
            )
        )
    return out


class ViaSdk:
    """A training client (and later a sampler) of the running Lathe, through the SDK."""

    def __init__(self, args, data) -> None:
        import tinker

        key = args.key if args.key.startswith("tml-") else "tml-" + args.key
        self.service = tinker.ServiceClient(base_url=args.url, api_key=key)
        self.client = self.service.create_lora_training_client(
            base_model=args.base, rank=8, seed=0
        ).result()
        self.data, self.adam = data, tinker.AdamParams(learning_rate=1e-4)
        self.prompt = tinker.ModelInput.from_ints(list(range(10, 42)))
        self.params = tinker.SamplingParams(max_tokens=args.sample_tokens, stop=[], seed=1)
        self.n, self.sampler = args.samples, None
        self.step()  # warm-up

    def step(self) -> None:
        fb = self.client.forward_backward(self.data, "cross_entropy")
        opt = self.client.optim_step(self.adam)  # pipelined, as the cookbook does
        fb.result(), opt.result()

    def sample(self) -> None:
        if self.sampler is None:  # the weights as trained, loaded once (warm-up)
            self.sampler = self.client.save_weights_and_get_sampling_client().result()
            self.sampler.sample(self.prompt, 1, self.params).result()
        self.sampler.sample(self.prompt, self.n, self.params).result()


class InProcess:
    """The same client computed here with the trainer's own code: no wire, no database."""

    def __init__(self, args, body: bytes) -> None:
        from core.settings import get_settings
        from core.tinker import sampler
        from core.tinker.lora_pool import LoraPool

        self.pool = LoraPool(get_settings())
        lora = {"rank": 8, "seed": 0, "train_mlp": True, "train_attn": True, "train_unembed": True}
        self.client = self.pool.create("bench", args.base, lora)
        self.body, self.adam = body, {"learning_rate": 1e-4}
        self.params = sampler.Params(args.sample_tokens, 1.0, -1, 1.0, 1, set(), [])
        self.n = args.samples
        self.step()  # warm-up
        self._sample(1)

    def step(self) -> None:
        from core.tinker import engine

        engine.forward_backward(self.pool, self.client, self.body)
        engine.optim_step(self.client, self.adam)

    def sample(self) -> None:
        self._sample(self.n)

    def _sample(self, n: int) -> None:
        from core.tinker import sampler

        base = self.client.base
        sampler.sample(base.model, base.tokenizer, list(range(10, 42)), n, self.params, False)


def paired(a, b, times: int) -> tuple[float, float]:
    """Median seconds of `a()` and of `b()`, called alternately `times` times each: a shared
    host's load swings hit both sides alike, and the median drops the calls it hit hardest."""
    out: tuple[list[float], list[float]] = ([], [])
    for _ in range(times):
        for fn, seconds in ((a, out[0]), (b, out[1])):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
    return statistics.median(out[0]), statistics.median(out[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", metavar="PG_URL", help="start a Lathe on a fresh database there")
    p.add_argument("--url", help="a running Lathe (with --key)")
    p.add_argument("--key")
    p.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    p.add_argument("--base", default="tiny-llama")
    p.add_argument("--vocab", type=int, default=500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="train steps per side")
    p.add_argument("--samples", type=int, default=8, help="num_samples of a sample call")
    p.add_argument("--sample-tokens", type=int, default=64)
    p.add_argument("--sample-calls", type=int, default=5, help="sample calls per side")
    args = p.parse_args()
    if not (args.start or (args.url and args.key)):
        p.error("give --start PG_URL, or --url and --key")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TINKER_TELEMETRY", "0")
    import torch

    torch.set_num_threads(args.threads)
    with contextlib.ExitStack() as stack:
        if args.start:
            args.url, args.key = stack.enter_context(started_lathe(args.start, args.base))
        load_before = os.getloadavg()
        report(args, load_before)


def report(args, load_before: tuple[float, float, float]) -> None:
    data = batch(args.batch, args.len, args.vocab)
    sdk, local = ViaSdk(args, data), InProcess(args, _proto(data))
    sdk_step, local_step = paired(sdk.step, local.step, args.steps)
    sdk_call, local_call = paired(sdk.sample, local.sample, args.sample_calls)
    tokens, sampled = args.batch * args.len, args.samples * args.sample_tokens
    print(
        f"batch {args.batch} x {args.len} tokens, {args.steps} steps; {args.samples} samples x "
        f"{args.sample_tokens} tokens, {args.sample_calls} calls; {args.threads} torch "
        "thread(s); medians of alternating calls"
    )
    print(
        f"train  sdk {tokens / sdk_step:9.0f} tok/s  in-process {tokens / local_step:9.0f}"
        f" tok/s  ratio {local_step / sdk_step:.2f}  ({1000 * local_step:.0f}"
        f" vs {1000 * sdk_step:.0f} ms/step)"
    )
    print(
        f"sample sdk {sampled / sdk_call:9.0f} tok/s  in-process {sampled / local_call:9.0f}"
        f" tok/s  ratio {local_call / sdk_call:.2f}  ({1000 * local_call:.0f}"
        f" vs {1000 * sdk_call:.0f} ms/call)"
    )
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")


@contextlib.contextmanager
def started_lathe(pg_admin_url: str, base: str) -> Iterator[tuple[str, str]]:
    """(url, key) of a Lathe API + one Tinker trainer on a fresh database of `pg_admin_url`'s
    server, with the bench's LATHE_* settings; everything is stopped and dropped after."""
    from sqlalchemy import create_engine, text

    from tests.utils.processes import (
        Proc,
        base_env,
        free_port,
        lathe,
        run_lathe,
        wait_http,
        wait_log,
    )

    root = Path(tempfile.mkdtemp(prefix="lathe-bench-tinker-"))
    name = f"lathe_bench_{secrets.token_hex(4)}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = base_env(
        LATHE_DATABASE_URL=pg_admin_url.rsplit("/", 1)[0] + f"/{name}",
        LATHE_DATA_DIR=str(root / "data"),
        LATHE_MODEL_CACHE_DIR=os.environ.get("LATHE_MODEL_CACHE_DIR", str(root / "models")),
        LATHE_BASE_MODELS=json.dumps({base: {"source": "builtin"}}),
        LATHE_EMBEDDED_WORKER="false",
        LATHE_INFERENCE_URL="http://127.0.0.1:9",  # no inference service: not benchmarked
        LATHE_REQUESTS_PER_MINUTE="1000000",
    )
    os.environ.update({k: env[k] for k in ("LATHE_MODEL_CACHE_DIR", "LATHE_BASE_MODELS")})
    from core.registry import base_model_path
    from core.settings import get_settings

    base_model_path(get_settings(), base)  # built once here, not by two processes at once
    procs: list[Proc] = []
    try:
        run_lathe(env, "migrate")
        key = run_lathe(env, "keys", "create", "--org", "bench").strip()
        port = free_port()
        procs.append(Proc(lathe("serve", "--port", str(port)), env, root / "api.log"))
        trainer = [sys.executable, "-m", "worker.tinker_trainer", "--device", "cpu"]
        procs.append(Proc(trainer, env, root / "trainer.log"))
        wait_http(f"http://127.0.0.1:{port}/health", procs[0])
        wait_log(procs[1], "tinker trainer ready")
        yield f"http://127.0.0.1:{port}", key
    finally:
        for proc in procs:
            proc.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _proto(data) -> bytes:
    """The request body the SDK would send for `data` (its own encoder)."""
    from core.tinker import tinker_public_pb2 as pb

    req = pb.ForwardBackwardRequest(model_id="bench", seq_id=1, loss_fn="cross_entropy")
    for d in data:
        msg = req.data.add()
        msg.model_input.add().encoded_text.tokens = np.asarray(
            d.model_input.to_ints(), dtype=np.int32
        ).tobytes()
        for name, td in d.loss_fn_inputs.items():
            t = msg.loss_fn_inputs[name]
            arr = td.to_numpy()
            t.dense = arr.tobytes()
            t.dtype = pb.DTYPE_INT64 if arr.dtype == np.int64 else pb.DTYPE_FLOAT32
    return req.SerializeToString()


if __name__ == "__main__":
    main()
