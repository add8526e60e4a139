"""What every training method receives and returns: the recipe interface.

A method is a module with `run(ctx: TrainingContext) -> TrainingResult`. It reads top to
bottom (resolve hyperparameters → model → data → train → save) and knows nothing of HTTP,
Celery or the database: it talks to the job through `ctx.reporter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.data.examples import Example
from core.jobs.spec import JobCreate


class Reporter(Protocol):
    def message(self, text: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        """A human-readable job event."""

    def metrics(self, data: dict[str, Any]) -> None:
        """An OpenAI `metrics` event: step, total_steps, train_loss, valid_loss, ..."""

    def should_stop(self) -> bool:
        """True once the job was cancelled; checked between steps."""


@dataclass
class TrainingContext:
    job_id: str
    spec: JobCreate
    seed: int
    base_model_path: Path
    train_examples: list[Example]
    valid_examples: list[Example]
    output_dir: Path
    work_dir: Path
    device: str
    reporter: Reporter


@dataclass
class TrainingResult:
    artifact_dir: Path
    adapter_type: str
    trained_tokens: int
    hyperparameters: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False
