"""`DELETE /v1/models/{id}`: a fine-tuned model goes with its job's checkpoints.

A checkpoint (`ft:…:ckpt-step-N`) is a snapshot on the way to the job's model; once that
model is deleted, leaving its checkpoints servable would keep the weights the user meant to
remove. So deleting the final model deletes every checkpoint of its job too — models,
Checkpoint rows and stored bytes (resume state included) — after the same in-use checks as
the model itself (a model trained from a checkpoint, or an unfinished job starting from one,
refuses the whole deletion). Deleting one checkpoint deletes only it. Either way the job gets
an event naming what was deleted, so an earlier "Checkpoint saved" event no longer points at
weights without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import registry
from core.errors import Conflict, InvalidRequest
from core.jobs.events import add_event
from core.jobs.states import TERMINAL
from core.persistence.drift_models import DriftSample
from core.persistence.models import Checkpoint, Job, Model


@dataclass
class Deleted:
    models: list[Model] = field(default_factory=list)
    """Rows deleted: the inference service is told to forget each."""
    prefixes: list[str] = field(default_factory=list)
    """Storage prefixes to delete once the transaction commits."""


def delete_model(session: Session, org_id: str, model_id: str) -> Deleted:
    row = registry.get_model(session, org_id, model_id)
    checkpoints = _checkpoints_of(session, row)
    deleted = Deleted()
    for model in [row, *(c for c, _ in checkpoints)]:
        deleted.models.append(_delete_row(session, org_id, model.id))
    if row.artifact_key:
        deleted.prefixes.append(row.artifact_key)
    if row.kind == "tinker":  # Tinker sampler weights: their tinker:// checkpoint goes too
        from core.persistence.tinker_models import TinkerCheckpoint

        if (ckpt := session.get(TinkerCheckpoint, row.id)) is not None:
            deleted.prefixes.append(ckpt.storage_key)
            session.delete(ckpt)
    for model, checkpoint in checkpoints:
        deleted.prefixes.append(checkpoint.storage_key if checkpoint else model.artifact_key)
        if checkpoint is not None:
            session.delete(checkpoint)
    if row.job_id:
        _say_so(session, row, [c.id for c, _ in checkpoints])
    session.flush()
    return deleted


def _checkpoints_of(session: Session, row: Model) -> list[tuple[Model, Checkpoint | None]]:
    """The checkpoint models (with their rows) that go with `row`: none for a checkpoint."""
    if row.kind != "fine_tuned" or row.job_id is None:
        return []
    models = session.scalars(
        select(Model)
        .where(Model.job_id == row.job_id, Model.kind == "checkpoint")
        .order_by(Model.id)
    ).all()
    rows = {
        c.fine_tuned_model_checkpoint: c
        for c in session.scalars(select(Checkpoint).where(Checkpoint.job_id == row.job_id))
    }
    return [(m, rows.get(m.id)) for m in models]


def _say_so(session: Session, row: Model, checkpoints: list[str]) -> None:
    if row.kind == "checkpoint":
        message = f"Checkpoint {row.id} deleted"
        names = [row.id]
    else:
        also = f", with its checkpoints {', '.join(checkpoints)}" if checkpoints else ""
        message = f"Model {row.id} deleted{also}"
        names = checkpoints
    add_event(
        session,
        row.job_id,  # type: ignore[arg-type]
        message,
        data={"deleted_model": row.id, "deleted_checkpoints": names},
    )


def _delete_row(session: Session, org_id: str, model_id: str) -> Model:
    """Delete an organization's model row (the caller removes its bytes once committed).

    Refused while anything still needs its weights: a model trained from it (DPO, reward
    models, PPO and GRPO rebuild their starting weights from their parent) or an unfinished
    job starting from it.
    """
    row = registry.get_model(session, org_id, model_id)
    if row.organization_id is None:
        raise InvalidRequest("base models cannot be deleted", param="model")
    children = session.scalars(
        select(Model.id)
        .join(Job, Model.job_id == Job.id)
        .where(Job.model == model_id, Model.kind != "checkpoint", Model.id != model_id)
    ).all()
    pending = session.scalars(
        select(Job.id).where(Job.model == model_id, Job.status.not_in([s.value for s in TERMINAL]))
    ).all()
    if children or pending:
        users = ", ".join([*children, *pending][:5])
        raise Conflict(
            f"{model_id} is still needed by {users}; delete those first",
            param="model",
            code="model_in_use",
        )
    session.execute(delete(DriftSample).where(DriftSample.model_id == model_id))
    session.delete(row)
    session.flush()
    return row
