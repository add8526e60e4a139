"""Checkpoints of a fine-tuning job: bytes in storage, a Checkpoint row, a servable model name.

Storage layout, per checkpoint (`orgs/{org}/models/{job}/checkpoints/step-{N}/`):
- `adapter/`: the adapter (or full model) in `core.adapters.save_artifact`'s layout. A Model row
  of kind "checkpoint" named `ft:...:ckpt-step-N` points at it, so a checkpoint is served,
  listed, deleted and fine-tuned further exactly like the job's final model.
- `state/`: the HF Trainer checkpoint (weights, optimizer, scheduler, RNG, trainer_state.json)
  that a re-run of the job resumes from. A job across hosts stores every rank's files there:
  the ranks away from rank 0 upload their own (`upload_rank_state`: their RNG state, FSDP's
  model and optimizer shards) before rank 0 uploads its folder and records the checkpoint, and
  each rank's host downloads the whole state to resume (`download_resume_state`).

Retention: the latest `keep` checkpoints are kept; only the latest one keeps its `state/`.
When the job succeeds or is cancelled its resume state is deleted (nothing will resume it) and
the adapters stay: checkpoints of a cancelled job remain listed and servable, as the partial
progress a client paid for. A failed job keeps its resume state, so a retry continues, and so
does a paused one: the worker saves a checkpoint at the step it pauses on, and resume goes on
from there (a paused job cancelled later loses it then).
`DELETE /v1/models/{ckpt}` removes that checkpoint's model and adapter bytes like any model's;
its Checkpoint row stays listed (the metrics are the job's history). Deleting the job's final
model deletes its checkpoints with it (core.jobs.model_deletion). A checkpoint pruned here gets
an event saying so, after the event that announced it. Jobs themselves are never deleted
(OpenAI has no such call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.ids import new_id
from core.persistence.models import Checkpoint, Job, Model, Organization
from core.storage import Storage, put_dir


def job_prefix(job: Job) -> str:
    return f"orgs/{job.organization_id}/models/{job.id}"


def fine_tuned_model_name(session: Session, job: Job) -> str:
    """OpenAI's `ft:{base}:{org}:{suffix}:{id}`; known from the start, so checkpoints use it."""
    org = session.get(Organization, job.organization_id)
    return f"ft:{job.base_model}:{org.name}:{job.suffix or ''}:{job.id[-8:]}"  # type: ignore[union-attr]


def checkpoint_prefix(job: Job, step: int) -> str:
    return f"{job_prefix(job)}/checkpoints/step-{step}"


def upload_checkpoint(
    storage: Storage, job: Job, step: int, artifact_dir: Path, state_dir: Path | None
) -> str:
    """Upload before any row names the bytes; returns the checkpoint's prefix."""
    prefix = checkpoint_prefix(job, step)
    put_dir(storage, f"{prefix}/adapter", artifact_dir)
    if state_dir is not None:
        put_dir(storage, f"{prefix}/state", state_dir)
    return prefix


def upload_rank_state(storage: Storage, job: Job, step: int, state_dir: Path) -> None:
    """A rank's own resume-state files (its folder on another host than rank 0's), into the
    checkpoint's `state/` beside rank 0's, before rank 0 records it. Unrecorded (the run died
    first), they are swept with the step's other bytes (core.cleanup)."""
    put_dir(storage, f"{checkpoint_prefix(job, step)}/state", state_dir)


@dataclass
class Pruned:
    checkpoints: list[str] = field(default_factory=list)
    """Model names of the checkpoints removed (the caller says so in an event)."""
    prefixes: list[str] = field(default_factory=list)
    """Storage prefixes to delete once the transaction commits."""


def record_checkpoint(
    session: Session, job: Job, step: int, prefix: str, metrics: dict[str, Any], keep: int
) -> tuple[str, Pruned]:
    """Add the Checkpoint and Model rows and prune; returns the checkpoint's model name and
    what was pruned."""
    name = f"{fine_tuned_model_name(session, job)}:ckpt-step-{step}"
    stale = session.get(Model, name)  # a resumed run saving the same step again
    if stale is not None:
        session.delete(stale)
        session.execute(delete(Checkpoint).where(Checkpoint.fine_tuned_model_checkpoint == name))
        session.flush()
    session.add(
        Checkpoint(
            id=new_id("ftckpt_"),
            job_id=job.id,
            step=step,
            metrics=metrics,
            storage_key=prefix,
            fine_tuned_model_checkpoint=name,
        )
    )
    session.add(
        Model(
            id=name,
            organization_id=job.organization_id,
            kind="checkpoint",
            base_model=job.base_model,
            job_id=job.id,
            artifact_key=f"{prefix}/adapter",
            adapter_type=job.spec.get("adapter", {}).get("type"),
        )
    )
    session.flush()
    return name, _prune(session, job.id, keep)


def _prune(session: Session, job_id: str, keep: int) -> Pruned:
    """Drop all but the latest `keep` checkpoints (rows and models); the latest alone keeps
    its resume state."""
    rows = list(
        session.scalars(
            select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step.desc())
        )
    )
    doomed = Pruned()
    for row in rows[keep:]:
        model = session.get(Model, row.fine_tuned_model_checkpoint)
        if model is not None:
            session.delete(model)
            doomed.checkpoints.append(row.fine_tuned_model_checkpoint)
        session.delete(row)
        doomed.prefixes.append(row.storage_key)
    doomed.prefixes += [f"{row.storage_key}/state" for row in rows[1:keep]]
    return doomed


def latest_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    return session.scalar(
        select(Checkpoint)
        .where(Checkpoint.job_id == job_id)
        .order_by(Checkpoint.step.desc())
        .limit(1)
    )


def download_resume_state(storage: Storage, checkpoint: Checkpoint, dest: Path) -> Path | None:
    """The checkpoint's trainer state, every rank's files, as a local `checkpoint-N`
    directory, or None."""
    prefix = f"{checkpoint.storage_key}/state"
    keys = storage.list_keys(prefix)
    if not any(k.endswith("/trainer_state.json") for k in keys):
        return None
    local = dest / f"checkpoint-{checkpoint.step}"
    for key in keys:
        storage.download(key, local / key[len(prefix) + 1 :])
    return local


def drop_resume_state(session: Session, storage: Storage, job_id: str) -> None:
    for row in session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)):
        storage.delete_prefix(f"{row.storage_key}/state")
