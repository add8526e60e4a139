"""`train_throughput.py --nodes N`: Lathe's supervised path as a Ray Train gang of N ranks.

Each rank is a Ray Train worker on its own node of a local Ray cluster (one CPU each, gloo),
with the process group Ray Train sets up — what `core.runs.ray_driver` runs for a job across
hosts — and trains the same data as the 1-process run it is compared with. On one host the
ratio is Ray's overhead (loopback gloo between raylets, the gang's start-up), not scaling.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def gang_rank(config: dict[str, Any]) -> None:
    """One rank: build the same model and data, train, report tokens/s."""
    import ray.train
    import torch
    from transformers import AutoTokenizer

    from bench.train_throughput import make_examples, run_lathe
    from core.training import distributed
    from core.training.tokenize import tokenize_example

    args = argparse.Namespace(**config)
    torch.set_num_threads(args.threads)
    distributed.init()  # a no-op: Ray Train set up the process group
    with tempfile.TemporaryDirectory(prefix="lathe-bench-rank-") as tmp:
        work = Path(tmp)
        model_dir = Path(args.model_dir)  # built once by the driver (one host: shared)
        examples = make_examples(args.examples, args.max_len, seed=0)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        rows = [tokenize_example(tokenizer, ex, args.max_len) for ex in examples]
        timer = run_lathe(model_dir, examples, rows, args, work)
    real = sum(len(r.input_ids) for r in rows)
    if ray.train.get_context().get_world_rank() == 0:  # Ray Train V2 returns no metrics
        Path(args.out).write_text(json.dumps({"tokens_per_s": real / timer.seconds}))


def on_ray(args: argparse.Namespace, one: float) -> None:
    import ray

    from bench.train_throughput import build_model
    from tests.utils.ray_cluster import local_ray

    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    with local_ray(nodes=args.nodes) as cluster, tempfile.TemporaryDirectory() as tmp:
        # The ranks load one model built here (this host's disk is theirs): built inside a
        # rank, after Ray Train set up the process group, its config.json lacked model_type.
        model_dir = build_model(Path(tmp) / "model", args.size, args.max_len)
        ray.init(address=cluster.cluster.address, runtime_env={"env_vars": env})
        try:
            wall = _fit(args, model_dir, Path(tmp))
        finally:
            ray.shutdown()
        many = json.loads((Path(tmp) / "rank0.json").read_text())["tokens_per_s"]
    print(
        f"Ray gang of {args.nodes} nodes: {many:,.0f} tokens/s; {many / one:.2f}x one process "
        f"(one host: the ranks share its cores, gloo over loopback — overhead, not scaling); "
        f"{wall:.0f} s from fit() to its end",
        flush=True,
    )
    print(json.dumps({"processes_1": round(one, 1), f"ray_nodes_{args.nodes}": round(many, 1)}))


def _fit(args: argparse.Namespace, model_dir: Path, tmp: Path) -> float:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    started = time.perf_counter()
    TorchTrainer(
        gang_rank,
        train_loop_config={
            **vars(args),
            "model_dir": str(model_dir),
            "out": str(tmp / "rank0.json"),
        },
        scaling_config=ScalingConfig(
            num_workers=args.nodes,
            resources_per_worker={"CPU": 1},
            placement_strategy="STRICT_SPREAD",
        ),
        torch_config=TorchConfig(backend="gloo"),
        run_config=RunConfig(name="lathe-bench", storage_path=str(tmp / "results")),
    ).fit()
    return time.perf_counter() - started
