"""Training throughput: Lathe's supervised path against a stock transformers + peft LoRA run.

Both train the same random-init Llama (built like core/tiny_model.py, `--size` picks hidden
size and depth) with the same LoRA (r 8, attention + MLP projections) for one epoch over the
same chat data, whose answers have very different lengths (log-normal, 8 to `--max-len`
tokens), tokenized the same way (core.training.tokenize: loss on the answer only).

- baseline: `transformers.Trainer` + `peft.get_peft_model`, `DataCollatorForSeq2Seq` (each
  batch padded to its longest example), no packing, default attention (SDPA).
- lathe: `core.methods.supervised.run` (TRL SFTTrainer, packing, SDPA) with the same
  examples, learning rate and tokens per optimizer step (about).

Throughput is real (non-padding) tokens trained per second of training (first step to last,
model loading and tokenization excluded), so the ratio is a ratio of training times.

    .venv/bin/python bench/train_throughput.py --size small
    .venv/bin/python bench/train_throughput.py --size medium --examples 256 --device cuda

With `--processes N` it measures Lathe's supervised path on 1 process, then on N processes
(one job across N ranks through torch.distributed, DDP; gloo on a CPU, NCCL on GPUs: what
`lathe worker --gpus N` runs), each with `--threads` torch threads, and prints the scaling:

    .venv/bin/python bench/train_throughput.py --processes 2 --examples 64 --max-len 256

With `--nodes N` the N ranks run instead as a Ray Train `TorchTrainer` gang (one rank per
node, gloo) on a local Ray cluster of N one-CPU nodes started for the run
(tests/utils/ray_cluster.py), as a job across hosts runs (core.runs.ray_driver), against 1
process of the same training. On one host this measures Ray's overhead (gang start-up, and
gloo over loopback between raylets), not scaling across hosts:

    .venv/bin/python bench/train_throughput.py --nodes 2 --examples 64 --max-len 256

Not run in CI: it trains for minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {  # hidden, intermediate, layers, heads, kv heads
    "small": (256, 688, 4, 4, 4),
    "medium": (512, 1376, 4, 8, 8),
    "large": (1024, 2752, 8, 16, 8),
}
LORA = {"r": 8, "alpha": 16, "dropout": 0.0}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_model(path: Path, size: str, max_len: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.tiny_model import build_tokenizer

    hidden, inter, layers, heads, kv = SIZES[size]
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=max(2048, max_len),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_examples(n: int, max_len: int, seed: int) -> list:
    """Chats whose answers run from a few tokens to `max_len`: log-normal lengths, as real
    instruction data has (many short answers, a long tail)."""
    from core.data.examples import Conversation, Message
    from core.tiny_model import _CORPUS

    rng = random.Random(seed)
    words = _CORPUS.split()
    examples = []
    for i in range(n):
        n_words = int(min(max_len * 0.6, max(4, rng.lognormvariate(math.log(60), 1.0))))
        answer = " ".join(rng.choice(words) for _ in range(n_words))
        question = f"Question {i}: " + " ".join(rng.choice(words) for _ in range(8))
        examples.append(Conversation((Message("user", question), Message("assistant", answer))))
    return examples


class Timer:
    """Training time from the start of the first step to the end of the last."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None
        self.steps = 0

    def begin(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def step(self) -> None:
        self.steps += 1
        self.end = time.perf_counter()

    @property
    def seconds(self) -> float:
        assert self.start is not None and self.end is not None
        return self.end - self.start


def run_baseline(model_dir: Path, rows: list, args, work: Path) -> tuple[Timer, int]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    timer = Timer()

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            timer.begin()

        def on_step_end(self, *a, **k):
            timer.step()

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model = get_peft_model(
        model,
        LoraConfig(
            r=LORA["r"],
            lora_alpha=LORA["alpha"],
            lora_dropout=LORA["dropout"],
            target_modules=TARGETS,
            task_type="CAUSAL_LM",
        ),
    )
    data = Dataset.from_dict(
        {"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]}
    )
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(work / "baseline"),
            num_train_epochs=1,
            learning_rate=2e-4,
            per_device_train_batch_size=args.batch_size,
            logging_steps=10,
            report_to=[],
            save_strategy="no",
            disable_tqdm=True,
            use_cpu=args.device == "cpu",
            seed=0,
            dataloader_pin_memory=False,
            bf16=args.device == "cuda",  # as Lathe on a GPU
        ),
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        callbacks=[Clock()],
    )
    trainer.train()
    padded = sum(
        max(len(r.input_ids) for r in rows[i : i + args.batch_size])
        * len(rows[i : i + args.batch_size])
        for i in range(0, len(rows), args.batch_size)
    )
    return timer, padded


class ClockReporter:
    """A Reporter (core.jobspec.recipe) that times the steps from its metrics events."""

    def __init__(self) -> None:
        self.timer = Timer()

    def message(self, text: str, level: str = "info", data: dict | None = None) -> None:
        pass

    def resolved(self, hyperparameters: dict[str, Any]) -> None:  # at train begin
        self.timer.begin()

    def metrics(self, data: dict[str, Any]) -> None:  # at each step end
        self.timer.step()

    def should_stop(self) -> bool:
        return False

    def checkpoint(self, *args: Any) -> None:
        raise AssertionError("the benchmark asks for no checkpoints")


def run_lathe(model_dir: Path, examples: list, rows: list, args, work: Path) -> Timer:
    from core.jobspec.job import JobCreate
    from core.jobspec.recipe import TrainingContext
    from core.methods import supervised

    real = sum(len(r.input_ids) for r in rows)
    # About the baseline's real tokens per optimizer step, in rows of max_len tokens.
    per_step = real / math.ceil(len(rows) / args.batch_size)
    batch = max(1, round(per_step / args.max_len))
    spec = JobCreate.model_validate(
        {
            "model": "bench",
            "training_file": "file-bench",
            "adapter": {"type": "lora", **LORA},
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {
                        "n_epochs": 1,
                        "batch_size": batch,
                        "learning_rate": 2e-4,
                        "warmup_ratio": 0.0,
                        "max_seq_length": args.max_len,
                        "packing": True,
                        "checkpoint_interval": 10**6,
                    }
                },
            },
        }
    )
    reporter = ClockReporter()
    ctx = TrainingContext(
        job_id="ftjob-bench",
        spec=spec,
        seed=0,
        base_model_path=model_dir,
        train_examples=examples,
        valid_examples=[],
        output_dir=work / "lathe" / "artifact",
        work_dir=work / "lathe",
        device=args.device,
        reporter=reporter,
    )
    supervised.run(ctx)
    return reporter.timer


def reset_peak_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> str:
    import torch

    if not device.startswith("cuda"):
        return ""
    return f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--examples", type=int, default=192)
    parser.add_argument("--max-len", type=int, default=1024, help="longest example, tokens")
    parser.add_argument("--batch-size", type=int, default=8, help="baseline examples per step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 gives stable numbers on a shared machine",
    )
    parser.add_argument("--only", choices=["baseline", "lathe"])
    parser.add_argument(
        "--processes", type=int, default=1, help="also train on this many ranks (DDP)"
    )
    parser.add_argument(
        "--nodes", type=int, default=1, help="also train as a Ray gang over this many nodes"
    )
    args = parser.parse_args()
    if args.nodes > 1:
        from bench.ray_gang import on_ray

        return on_ray(args, one_process(args))
    if args.processes > 1 and "RANK" not in os.environ:
        return scale(args)

    import torch
    from transformers import AutoTokenizer

    from core.training.tokenize import tokenize_example

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="lathe-bench-") as tmp:
        work = Path(tmp)
        model_dir = build_model(work / "model", args.size, args.max_len)
        examples = make_examples(args.examples, args.max_len, seed=0)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        rows = [tokenize_example(tokenizer, ex, args.max_len) for ex in examples]
        real = sum(len(r.input_ids) for r in rows)
        lengths = sorted(len(r.input_ids) for r in rows)
        print(
            f"model {args.size} {SIZES[args.size]}, {args.examples} examples, {real} tokens, "
            f"lengths min {lengths[0]} median {lengths[len(lengths) // 2]} "
            f"max {lengths[-1]}, device {args.device}, {args.threads} threads",
            flush=True,
        )
        results: dict[str, float] = {}
        if args.only != "lathe":
            reset_peak_memory(args.device)
            timer, padded = run_baseline(model_dir, rows, args, work)
            results["baseline"] = real / timer.seconds
            print(
                f"baseline (Trainer + peft, padded batches of {args.batch_size}): "
                f"{results['baseline']:,.0f} tokens/s ({timer.steps} steps, "
                f"{timer.seconds:.1f} s; {1 - real / padded:.0%} of computed tokens are "
                f"padding){peak_memory(args.device)}",
                flush=True,
            )
        if args.only != "baseline":
            reset_peak_memory(args.device)
            if "RANK" in os.environ:  # one rank of `--processes N`
                from core.training import distributed

                distributed.init()
            timer = run_lathe(model_dir, examples, rows, args, work)
            results["lathe"] = real / timer.seconds
            print(
                f"lathe (core.methods.supervised): {results['lathe']:,.0f} tokens/s "
                f"({timer.steps} steps, {timer.seconds:.1f} s){peak_memory(args.device)}",
                flush=True,
            )
        if len(results) == 2:
            print(f"ratio lathe / baseline: {results['lathe'] / results['baseline']:.2f}x")
        print(json.dumps({k: round(v, 1) for k, v in results.items()}))


def lathe_command(args) -> list[str]:
    """This script measuring Lathe's path only, with the same options."""
    common = [sys.executable, __file__, "--only", "lathe", "--size", args.size]
    common += ["--examples", str(args.examples), "--max-len", str(args.max_len)]
    common += ["--batch-size", str(args.batch_size), "--device", args.device]
    return common + ["--threads", str(args.threads)]


def tokens_per_s(out: str) -> float:
    return json.loads(out.strip().splitlines()[-1])["lathe"]


def one_process(args) -> float:
    """Lathe's path in one fresh process: tokens/s."""
    import subprocess

    out = subprocess.run(lathe_command(args), check=True, capture_output=True, text=True).stdout
    one = tokens_per_s(out)
    print(f"1 process: {one:,.0f} tokens/s", flush=True)
    return one


def scale(args) -> None:
    """Lathe's path on 1 process, then on `args.processes` ranks of one job: tokens/s of each."""
    import socket
    import subprocess

    common = lathe_command(args)
    one = one_process(args)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = args.processes
    ranks = [
        subprocess.Popen(
            common,
            stdout=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "RANK": str(r),
                "LOCAL_RANK": str(r),
                "WORLD_SIZE": str(n),
                "LOCAL_WORLD_SIZE": str(n),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            },  # fmt: skip
        )
        for r in range(n)
    ]
    outs = [p.communicate()[0] for p in ranks]
    if any(p.returncode for p in ranks):
        raise SystemExit(f"a rank failed: {[p.returncode for p in ranks]}")
    many = tokens_per_s(outs[0])
    print(f"{n} processes: {many:,.0f} tokens/s; speed-up {many / one:.2f}x, "
          f"scaling efficiency {many / one / n:.0%}")  # fmt: skip
    print(json.dumps({"processes_1": round(one, 1), f"processes_{n}": round(many, 1)}))


if __name__ == "__main__":
    main()
