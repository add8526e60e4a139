"""Benchmarks on a job's kept checkpoints (`evaluation.benchmark_checkpoints`) and picking the
weights the job publishes by one of those scores (`evaluation.select_best`).

The checkpoints scored are the ones the job still keeps when training ends: at most
LATHE_MAX_CHECKPOINTS, each a stored artifact (core.jobs.checkpoints) loaded on the job's
weights like the final model. select_best chooses among the final model and those checkpoints;
when a checkpoint wins, its files replace the final artifact's before publishing, so the job's
`fine_tuned_model` serves that checkpoint's weights (a tie keeps the final model)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.jobspec.job import SelectBest
from core.model_store import ModelStore, StoredModel
from core.persistence.models import Checkpoint, Model
from core.retry import db_retry
from core.runs.failures import JobFailure
from core.settings import Settings
from core.storage import worker_storage

FINAL = "tuned"
"""The loader key of the final model (benchmark_report's)."""


def kept_checkpoints(settings: Settings, job_id: str) -> list[tuple[int, StoredModel]]:
    """(step, model) of each checkpoint the job keeps whose model was not deleted, by step."""

    def lookup(session) -> list[tuple[int, StoredModel]]:
        rows = session.execute(
            select(Checkpoint.step, Model)
            .join(Model, Model.id == Checkpoint.fine_tuned_model_checkpoint)
            .where(Checkpoint.job_id == job_id)
            .order_by(Checkpoint.step)
        ).all()
        return [(step, StoredModel.of(model)) for step, model in rows]

    return db_retry(settings, "checkpoint lookup", lookup)


def checkpoint_loaders(
    settings: Settings, kept: list[tuple[int, StoredModel]], base_path: Path, device: str
) -> dict[str, Callable[[], tuple]]:
    """One (model, tokenizer) loader per checkpoint, keyed `step-N`."""
    from core.model_store import load_artifact

    store = ModelStore(settings, worker_storage(settings))

    def loader(model: StoredModel) -> Callable[[], tuple]:
        return lambda: load_artifact(base_path, store.artifact_dir(model), device=device)

    return {f"step-{step}": loader(model) for step, model in kept}


def checkpoint_report(
    kept: list[tuple[int, StoredModel]], scores: dict[str, dict], names: dict[str, str]
) -> list[dict[str, Any]]:
    """[{step, fine_tuned_model_checkpoint, tasks: {file id: metrics}}]; `names` maps lm-eval
    task names to file ids."""
    return [
        {
            "step": step,
            "fine_tuned_model_checkpoint": model.id,
            "tasks": {file_id: scores[f"step-{step}"][name] for name, file_id in names.items()},
        }
        for step, model in kept
    ]


def choose(found: dict[str, Any], best: SelectBest) -> dict[str, Any]:
    """{step (None: the final model), fine_tuned_model_checkpoint, task, metric, mode, value}:
    the best candidate, the final model winning ties."""
    sign = 1 if best.mode == "max" else -1
    final = found["tasks"][best.task][FINAL][best.metric]
    chosen = {"step": None, "fine_tuned_model_checkpoint": None, "value": final}
    for row in found.get("checkpoints", []):
        value = row["tasks"][best.task][best.metric]
        if sign * value > sign * chosen["value"]:
            chosen = {
                "step": row["step"],
                "fine_tuned_model_checkpoint": row["fine_tuned_model_checkpoint"],
                "value": value,
            }
    return {**chosen, "task": best.task, "metric": best.metric, "mode": best.mode}


def select_best(
    settings: Settings, found: dict[str, Any], best: SelectBest, artifact_dir: Path
) -> dict[str, Any]:
    """The choice (see `choose`), its checkpoint's weights now in `artifact_dir`."""
    chosen = choose(found, best)
    if chosen["step"] is not None:
        adopt(settings, chosen["fine_tuned_model_checkpoint"], artifact_dir)
    return chosen


def adopt(settings: Settings, model_id: str, artifact_dir: Path) -> None:
    """Overwrite the final artifact's files with the checkpoint's (same layout: the same
    save_artifact wrote both; files only the final has, such as its lineage, stay)."""
    store = ModelStore(settings, worker_storage(settings))

    def lookup(session) -> StoredModel | None:
        row = session.get(Model, model_id)
        return None if row is None else StoredModel.of(row)

    model = db_retry(settings, "checkpoint lookup", lookup)
    if model is None:
        raise JobFailure("model_not_found", f"{model_id} was deleted", "evaluation.select_best")
    shutil.copytree(store.artifact_dir(model), artifact_dir, dirs_exist_ok=True)


def message(chosen: dict[str, Any]) -> str:
    what = (
        "the final model"
        if chosen["step"] is None
        else f"the checkpoint at step {chosen['step']} ({chosen['fine_tuned_model_checkpoint']})"
    )
    return (
        f"Selected {what} by {chosen['task']} {chosen['metric']} ({chosen['mode']}) = "
        f"{chosen['value']:.4f}: fine_tuned_model serves its weights"
    )
