"""Run the RLHF recipes directly (no API, no worker): a context builder over real dataset files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data import load_examples
from core.jobspec.job import JobCreate
from core.jobspec.recipe import TrainingContext
from tests.core.training.conftest import (
    RecordingReporter,
    _one_thread,  # noqa: F401 - autouse: one CPU thread
)
from tests.utils.rlhf import write_jsonl

ADAPTERS = {
    "lora": {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0},
    "qlora": {"type": "qlora", "r": 16, "alpha": 32, "dropout": 0.0},
    "full": {"type": "full"},
}


def examples(tmp: Path, name: str, rows: list[dict], method: str) -> list:
    path = write_jsonl(tmp / f"{name}.jsonl", rows)
    return load_examples(path, path.name, method=method)[1]


def rlhf_ctx(
    root: Path,
    base: Path,
    method: dict[str, Any],
    train: list[dict],
    valid: list[dict] | None = None,
    adapter: str = "lora",
    **extra: Any,
) -> tuple[TrainingContext, RecordingReporter]:
    root.mkdir(parents=True, exist_ok=True)
    reporter = RecordingReporter(root / "stored")
    spec = JobCreate.model_validate(
        {
            "model": "tiny-llama",
            "training_file": "file-x",
            "adapter": ADAPTERS[adapter],
            "method": method,
        }
    )
    ctx = TrainingContext(
        job_id="ftjob-test",
        spec=spec,
        seed=7,
        base_model_path=base,
        train_examples=examples(root, "train", train, method["type"]),
        valid_examples=examples(root, "valid", valid, method["type"]) if valid else [],
        output_dir=root / "artifact",
        work_dir=root / "work",
        device="cpu",
        reporter=reporter,
        **extra,
    )
    return ctx, reporter


@dataclass
class StoppingReporter(RecordingReporter):
    """A job paused (or cancelled) once its metrics reached step `stop_after`: should_stop
    says so from then on, as the worker's reporter does once it reads the job's status."""

    stop_after: int = 0
    pause: bool = True

    def should_stop(self) -> bool:
        return any(e["step"] >= self.stop_after for e in self.metrics_events)

    def pausing(self) -> bool:
        return self.pause and self.should_stop()


def interrupted(ctx: TrainingContext, stop_after: int, pause: bool = True) -> StoppingReporter:
    """`ctx` with a reporter that stops it after step `stop_after`."""
    reporter = StoppingReporter(ctx.reporter.store, stop_after=stop_after, pause=pause)
    ctx.reporter = reporter
    return reporter
