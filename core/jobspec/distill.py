"""The `distillation` method block: a teacher model, a mode and the student's hyperparameters.

    {"type": "distillation", "distillation": {"teacher": "ft:…", "mode": "logits",
                                              "hyperparameters": {"beta": 0.0}}}

Modes, each from its paper:
- `sequence`: sequence-level KD (Kim & Rush 2016, https://arxiv.org/abs/1606.07947): the
  teacher answers the training prompts (greedy) and the student is fine-tuned on its answers.
- `logits`: word-level KD (Hinton et al. 2015, https://arxiv.org/abs/1503.02531) on the
  training data: forward KL from the teacher's token distributions, or the generalized JSD of
  GKD with `beta` (0: forward KL, 1: reverse KL).
- `on_policy`: GKD (Agarwal et al. 2024, https://arxiv.org/abs/2306.13649): the student samples
  completions and the teacher scores each of their tokens; `lmbda` is the fraction of batches
  the student samples (the rest use the dataset's answers), `beta` 1 (reverse KL) by default.

The student is the job's `model` with the job's `adapter`; it keeps the supervised knobs
(epochs, batch size, learning rate, schedule, evaluation and checkpoint intervals).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from core.jobspec import bounds as mx
from core.jobspec.bounds import auto_float, auto_int, bounded_int

Auto = Literal["auto"]
Unit = Annotated[float, Field(ge=0, le=1)]
DistillationMode = Literal["sequence", "logits", "on_policy"]

MODE_ONLY = {
    "beta": ("logits", "on_policy"),
    "lmbda": ("on_policy",),
    "temperature": ("on_policy",),
    "max_new_tokens": ("sequence", "on_policy"),
}
"""Hyperparameters that only some modes use: setting one for another mode is refused."""

SUPERVISED_FIELDS = (
    "n_epochs",
    "batch_size",
    "learning_rate_multiplier",
    "learning_rate",
    "warmup_ratio",
    "lr_scheduler",
    "weight_decay",
    "gradient_accumulation_steps",
    "max_seq_length",
    "seed",
    "eval_interval",
    "early_stopping",
    "checkpoint_interval",
    "mixed_precision",
)
"""The supervised knobs the student keeps; core.training.auto resolves them as for SFT."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DistillationHyperparameters(_Strict):
    """The student's optimizer and schedule (resolved by SFT's `auto` rules) and the
    divergence's knobs; every one `"auto"` by default."""

    n_epochs: auto_int(1, mx.MAX_EPOCHS) = Field(
        "auto", description="Passes over the training data."
    )
    batch_size: auto_int(1, mx.MAX_BATCH_SIZE) = Field(
        "auto", description="Rows per optimizer step."
    )
    learning_rate_multiplier: auto_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        "auto", description="Scales the adapter's default learning rate."
    )
    learning_rate: auto_float(0, mx.MAX_LEARNING_RATE, open_low=True) = Field(
        "auto", description="Absolute learning rate; overrides the multiplier."
    )
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] | Auto = "auto"
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] | Auto = "auto"
    weight_decay: auto_float(0, mx.MAX_FACTOR) = "auto"
    gradient_accumulation_steps: auto_int(1, mx.MAX_BATCH_SIZE) = "auto"
    max_seq_length: auto_int(8, mx.MAX_SEQ_LENGTH) = "auto"
    seed: auto_int(0, mx.MAX_SEED) = "auto"
    eval_interval: auto_int(1, mx.MAX_STEPS) = Field(
        "auto", description="Steps between validation runs; 'auto': once per epoch."
    )
    early_stopping: auto_int(1, mx.MAX_PATIENCE) = Field(
        "auto", description="Patience in evaluations of the held-out loss; 'auto': off."
    )
    checkpoint_interval: bounded_int(1, mx.MAX_STEPS) | Literal["epoch"] | Auto = "auto"
    mixed_precision: Literal["bf16", "fp16", "no"] | Auto = "auto"
    beta: Unit | Auto = Field(
        "auto",
        description="Generalized JSD interpolation (logits, on_policy): 0 is the forward KL "
        "KL(teacher||student), 1 the reverse KL. 'auto': 0 for logits (Hinton), 1 for on_policy.",
    )
    lmbda: Unit | Auto = Field(
        "auto",
        description="on_policy: fraction of batches whose completions the student samples (GKD's "
        "lambda); the rest train on the dataset's answers. 'auto': 1.",
    )
    temperature: Annotated[float, Field(gt=0, le=10)] | Auto = Field(
        "auto", description="on_policy: the student's sampling temperature; 'auto': 0.9 (TRL GKD)."
    )
    max_new_tokens: auto_int(1, mx.MAX_NEW_TOKENS) = Field(
        "auto",
        description="Tokens the teacher (sequence) or the student (on_policy) generates per "
        "prompt; 'auto': 128.",
    )


class DistillationMethod(_Strict):
    teacher: str = Field(
        description="The teacher: any model Lathe serves (a base model, an ft: model or a "
        "checkpoint) that generates text. logits and on_policy need the student's tokenizer."
    )
    mode: DistillationMode = Field(
        "logits", description="sequence, logits or on_policy (see the method's documentation)."
    )
    hyperparameters: DistillationHyperparameters = DistillationHyperparameters()

    @field_validator("hyperparameters")
    @classmethod
    def _mode_fields(
        cls, hp: DistillationHyperparameters, info: ValidationInfo
    ) -> DistillationHyperparameters:
        mode = info.data.get("mode", "logits")
        for name, modes in MODE_ONLY.items():
            if getattr(hp, name) != "auto" and mode not in modes:
                raise ValueError(f"{name} applies to mode {' or '.join(modes)}, not {mode}")
        return hp
