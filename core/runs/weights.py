"""The weights a run starts from: a base model, or the `ft:` model a job continues."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs.checkpoints import download_resume_state
from core.jobspec.recipe import TrainingContext
from core.methods import MERGED_START
from core.model_store import ModelStore, StoredModel
from core.persistence.models import Checkpoint, Job, Model
from core.registry import base_model_path
from core.retry import db_retry
from core.runs.context import RunContext
from core.runs.failures import JobFailure
from core.settings import Settings, get_settings
from core.storage import worker_storage
from core.tempdirs import temp_root


def detached(session: Session, table: type, key: str):
    """`table[key]`, detached from the session so it outlives the transaction."""
    row = session.get(table, key)
    if row is not None:
        session.expunge(row)
    return row


@dataclass(frozen=True)
class StartWeights:
    """The weights a run loads, and where they came from."""

    path: Path
    parent: Path | None = None
    """The artifact of the `ft:` model the job continues (its adapter, or its full model)."""
    merged_from: StoredModel | None = None
    """The `ft:` model merged into `path` (MERGED_START methods): the artifact's lineage."""


def start_weights(run: RunContext) -> StartWeights:
    """Continuing methods get the parent's artifact over its base, MERGED_START methods its
    merged weights."""
    job, settings = run.job, run.settings
    if job.model == job.base_model:
        return StartWeights(base_model_path(settings, job.base_model))
    row = db_retry(settings, "model lookup", lambda s: detached(s, Model, job.model))
    if row is None or row.artifact_key is None:
        raise JobFailure("model_not_found", f"{job.model} was deleted", "model")
    parent = StoredModel.of(row)
    store = ModelStore(settings, run.storage())
    if run.method in MERGED_START:
        from core.adapters import AdapterUnsupported

        try:
            return StartWeights(store.merged_dir(parent), merged_from=parent)
        except AdapterUnsupported as exc:
            raise JobFailure("unsupported_model", f"{job.model}: {exc}", "model") from exc
    return StartWeights(store.base_dir(parent), store.artifact_dir(parent))


def localize(settings: Settings, ctx: TrainingContext, work: Path, rank: int) -> TrainingContext:
    """The context rank 0 shared, for a rank on another host: rank 0's local paths exist only
    on its own host, so this rank fetches the same things itself — the start weights from the
    registry (its host's model cache), the continued model's artifact and the resume state
    from storage — into `work` (its own temp directory), and writes its outputs there."""
    job = _job(settings, ctx.job_id)
    storage = worker_storage(settings)
    base, parent = fetch_start_weights(job.id)
    resume = None
    if ctx.resume_from is not None:  # rank 0's `checkpoint-N`: the same checkpoint, here
        step = int(ctx.resume_from.name.removeprefix("checkpoint-"))
        row = db_retry(settings, "checkpoint lookup", lambda s: _checkpoint(s, job.id, step))
        if row is None:
            raise LookupError(f"{job.id}'s checkpoint at step {step} is gone")
        resume = download_resume_state(storage, row, work / "resume")
    return replace(
        ctx,
        base_model_path=base,
        parent_artifact_dir=parent,
        resume_from=resume,
        work_dir=work,
        output_dir=work / f"rank-{rank}",
    )


def _checkpoint(session: Session, job_id: str, step: int) -> Checkpoint | None:
    query = select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.step == step)
    row = session.scalars(query.limit(1)).first()
    if row is not None:
        session.expunge(row)
    return row


def _job(settings: Settings, job_id: str) -> Job:
    job = db_retry(settings, "job lookup", lambda s: detached(s, Job, job_id))
    if job is None:
        raise LookupError(f"{job_id} was deleted")  # the rank crashes: rank 0 sees it
    return job


_MARK = "LATHE_START_WEIGHTS "


def fetch_start_weights(job_id: str) -> tuple[Path, Path | None]:
    """`start_weights` of the job, run in a child process: a rank > 0 is in an initialized
    process group, where transformers' `save_pretrained` writes only on rank 0 — a builtin
    model built or an adapter merged there would be left without its weights."""
    out = subprocess.run(
        [sys.executable, "-m", "core.runs.weights", job_id],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(_MARK)]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"fetching the start weights of {job_id} failed: {out.stderr[-2000:]}")
    base, parent = json.loads(lines[-1][len(_MARK) :])
    return Path(base), Path(parent) if parent else None


def main(job_id: str) -> None:
    settings = get_settings()
    job = _job(settings, job_id)
    weights = start_weights(RunContext.start(settings, job, temp_root(settings)))
    parent = str(weights.parent) if weights.parent else None
    print(_MARK + json.dumps([str(weights.path), parent]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
