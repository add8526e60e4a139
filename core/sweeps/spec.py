"""The body of `POST /v1/fine_tuning/sweeps`: a job body plus what to search and how to judge.

    {"model": ..., "training_file": ..., "method": {...},          # as for a job
     "search_space": {"learning_rate": [3e-3, 1e-4]}, "search": {"type": "grid"},
     "objective": {"metric": "valid_loss", "goal": "minimize"}, "max_parallel": 2,
     "pruning": {"type": "median", "min_trials": 2, "warmup_steps": 0}}

The search space's shapes are core.sweeps.space's; the median rule core.sweeps.pruning's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.jobspec import bounds as mx
from core.jobspec.job import JobCreate
from core.sweeps.space import Range, Search

Metric = Literal[
    "valid_loss",
    "valid_mean_token_accuracy",
    "valid_accuracy",
    "valid_macro_f1",
    "valid_pair_accuracy",
    "valid_agreement",
    "valid_distillation_loss",
    "train_loss",
    "mean_reward",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    metric: Metric = Field(
        description="A metric the trials report in their metrics events: the final "
        "evaluation's value (else the last event's) is the trial's objective."
    )
    goal: Literal["minimize", "maximize"] = "minimize"


class Pruning(_Strict):
    type: Literal["median"] = "median"
    min_trials: int = Field(2, ge=1, description="Trials that must have reported by a step.")
    warmup_steps: int = Field(0, ge=0, description="Steps before a trial may be stopped.")


class SweepCreate(JobCreate):
    """Body of `POST /v1/fine_tuning/sweeps`: a job body plus what to search."""

    search_space: dict[str, list[Any] | Range] = Field(
        description="Hyperparameter of the method (`learning_rate`) or `adapter.<field>` → "
        "a list of values, {min, max} or {min, max, log: true}."
    )
    search: Search = Search()
    objective: Objective
    max_parallel: int = Field(2, ge=1, le=16, description="Trials unfinished at once.")
    pruning: Pruning | None = Field(None, description="Stop clearly worse trials early.")
    metadata: mx.metadata(mx.MAX_METADATA_PAIRS - 2) | None = Field(
        None, description="Copied to every trial, which adds lathe_sweep and lathe_sweep_trial."
    )


SWEEP_FIELDS = frozenset({"search_space", "search", "objective", "max_parallel", "pruning"})
