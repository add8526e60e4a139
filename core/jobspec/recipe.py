"""What every training method receives and returns: the recipe interface.

A method is a module with `run(ctx: TrainingContext) -> TrainingResult` (core.methods). It
reads top to bottom (resolve hyperparameters → model → data → train → save) and knows nothing of
HTTP, Celery or the database: it talks to the job through `ctx.reporter`. The training and
adapter layers use these types too, which is why they live here, below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.jobspec.job import JobCreate

if TYPE_CHECKING:
    from core.data.examples import Example


class Reporter(Protocol):
    def message(self, text: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        """A human-readable job event."""

    def metrics(self, data: dict[str, Any]) -> None:
        """An OpenAI `metrics` event: step, total_steps, train_loss, valid_loss, ..."""

    def should_stop(self) -> bool:
        """True once the job was cancelled or paused; checked between steps."""

    def pausing(self) -> bool:
        """After should_stop: True when the job was paused, so the loop first saves a
        checkpoint with its resume state at the current step (methods in RESUMABLE)."""

    def resolved(self, hyperparameters: dict[str, Any]) -> None:
        """The concrete hyperparameters, recorded on the job as training starts."""

    def checkpoint(
        self, step: int, artifact_dir: Path, state_dir: Path | None, metrics: dict[str, Any]
    ) -> None:
        """Store a servable artifact (save_artifact layout) and the trainer's resume state."""


class SpecError(Exception):
    """A valid spec that cannot run with this data or on this worker (bf16 on a CPU, early
    stopping without validation data): the job fails with this message, never runs differently.
    """

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_spec"):
        super().__init__(message)
        self.code = code
        self.param = param


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
    resume_from: Path | None = None
    """A trainer checkpoint directory (optimizer, scheduler, RNG state) to continue from."""
    parent_artifact_dir: Path | None = None
    """The artifact of the `ft:` model this job continues (its adapter or full model)."""
    reward_model_dirs: tuple[Path, Path] | None = None
    """(weights it applies to, artifact) of the reward model a ppo/grpo job scores with."""
    teacher_dir: Path | None = None
    """The weights (an adapter merged in) of the teacher a distillation job learns from."""
    test_examples: list[Example] = field(default_factory=list)
    """`data.test_split`'s examples: never trained or validated on; supervised and
    classification score the starting and the tuned model on them once, at the end."""
    task_files: dict[str, Path] = field(default_factory=dict)
    """Downloaded task files (purpose 'evals') by file id, for a method that only scores
    (core.methods.SCORES_ONLY: `eval`)."""


@dataclass
class TrainingResult:
    artifact_dir: Path
    adapter_type: str
    trained_tokens: int
    hyperparameters: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    model_task: str | None = "causal_lm"
    """What the published model does: `causal_lm`, or `reward_model` (scored via /v1/rewards);
    None when there is no model to publish (`eval` scores one and trains nothing)."""
    stopped_early: bool = False
    """Stopped by a cancel or a pause: nothing is published. (Early stopping on validation loss
    is a normal finish; it shows in `final_metrics`.)"""
    evaluation: dict[str, Any] | None = None
    """{"base": {...}, "tuned": {...}}: the same validation metrics before and after training;
    with a test split also {"test": {"base": {...}, "tuned": {...}, "examples": n}}."""
