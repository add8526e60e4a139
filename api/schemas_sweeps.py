"""Wire schema of a hyperparameter sweep (Lathe's own object, shaped like a job)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.schemas import ts
from core.persistence import models as orm
from core.sweeps.trials import trial_views


class SweepTrial(BaseModel):
    index: int
    parameters: dict[str, Any] = Field(description="The point of the search space it tries.")
    job_id: str | None = Field(None, description="Its fine-tuning job, once started.")
    status: str = Field(
        description="Its job's status; before it starts `pending`, or `cancelled` once its "
        "sweep is (it will never start)."
    )
    objective: float | None = Field(None, description="The objective, once it succeeded.")
    fine_tuned_model: str | None = None
    pruned: bool = Field(False, description="Stopped early by the median rule.")
    error: str | None = Field(None, description="Why its job could not be created.")


class SweepObject(BaseModel):
    id: str
    object: Literal["fine_tuning.sweep"] = "fine_tuning.sweep"
    created_at: int
    finished_at: int | None = None
    status: Literal["running", "succeeded", "failed", "cancelled"]
    model: str
    search_space: dict[str, Any]
    search: dict[str, Any]
    objective: dict[str, Any]
    max_parallel: int
    pruning: dict[str, Any] | None = None
    trials: list[SweepTrial]
    best_trial: SweepTrial | None = None
    fine_tuned_model: str | None = Field(None, description="The best trial's model.")

    @classmethod
    def from_row(cls, session: Session, row: orm.Sweep) -> SweepObject:
        views = trial_views(session, row)
        best = next((v for v in views if v["best"]), None)
        spec = row.spec
        return cls(
            id=row.id,
            created_at=ts(row.created_at) or 0,
            finished_at=ts(row.finished_at),
            status=row.status,  # type: ignore[arg-type]
            model=spec["job"]["model"],
            search_space=spec["search_space"],
            search=spec["search"],
            objective=spec["objective"],
            max_parallel=spec["max_parallel"],
            pruning=spec.get("pruning"),
            trials=[SweepTrial(**v) for v in views],
            best_trial=SweepTrial(**best) if best else None,
            fine_tuned_model=best["fine_tuned_model"] if best else None,
        )
