"""A recording Reporter and a context builder for running core.methods.supervised directly."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from core.data.examples import Conversation, Message
from core.jobspec.job import JobCreate
from core.jobspec.recipe import TrainingContext
from tests.utils.flows import CAPITALS, LEARN_ADAPTER


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """The machine is shared; the tiny model gains nothing from threads (and a fixed thread
    count keeps CPU float reductions in one order, run after run)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def capitals(answers: dict[str, str] | None = None) -> list[Conversation]:
    return [
        Conversation(
            (
                Message("user", f"What is the capital of {country}?"),
                Message("assistant", (answers or {}).get(country, city)),
            )
        )
        for country, city in CAPITALS
    ]


@dataclass
class RecordingReporter:
    """What the job would see: events, resolved hyperparameters, stored checkpoints."""

    store: Path
    messages: list[tuple[str, dict | None]] = field(default_factory=list)
    metrics_events: list[dict[str, Any]] = field(default_factory=list)
    resolved_hp: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, Path, Path | None, dict[str, Any]]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def message(self, text: str, level: str = "info", data: dict | None = None) -> None:
        self.messages.append((text, data))

    def metrics(self, data: dict[str, Any]) -> None:
        self.order.append("metrics")
        self.metrics_events.append(dict(data))

    def should_stop(self) -> bool:
        return False

    def pausing(self) -> bool:
        return False

    def resolved(self, hyperparameters: dict[str, Any]) -> None:
        self.order.append("resolved")
        self.resolved_hp.append(dict(hyperparameters))

    def checkpoint(self, step, artifact_dir, state_dir, metrics) -> None:
        dest = self.store / f"step-{step}"
        shutil.copytree(artifact_dir, dest / "adapter")
        if state_dir is not None:
            shutil.copytree(state_dir, dest / f"checkpoint-{step}")
        self.checkpoints.append(
            (step, dest / "adapter", dest / f"checkpoint-{step}" if state_dir else None, metrics)
        )


def make_ctx(
    root: Path,
    base: Path,
    hyperparameters: dict[str, Any],
    *,
    train: list | None = None,
    valid: list | None = None,
    adapter: dict[str, Any] | None = None,
    **extra: Any,
) -> tuple[TrainingContext, RecordingReporter]:
    root.mkdir(parents=True, exist_ok=True)
    reporter = RecordingReporter(root / "stored")
    spec = JobCreate.model_validate(
        {
            "model": "tiny-llama",
            "training_file": "file-x",
            "adapter": adapter or LEARN_ADAPTER,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        }
    )
    ctx = TrainingContext(
        job_id="ftjob-test",
        spec=spec,
        seed=7,
        base_model_path=base,
        train_examples=capitals() if train is None else train,
        valid_examples=capitals() if valid is None else valid,
        output_dir=root / "artifact",
        work_dir=root / "work",
        device="cpu",
        reporter=reporter,
        **extra,
    )
    return ctx, reporter
