"""The weights a run starts from: a base model, or the `ft:` model a job continues."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from core.methods import MERGED_START
from core.model_store import ModelStore, StoredModel
from core.persistence.models import Model
from core.registry import base_model_path
from core.retry import db_retry
from core.runs.context import RunContext
from core.runs.failures import JobFailure


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
