"""The weights a run starts from: a base model, or the `ft:` model a job continues."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from core.methods import MERGED_START
from core.model_store import ModelStore, StoredModel
from core.persistence.models import Job, Model
from core.registry import base_model_path
from core.retry import db_retry
from core.runs.failures import JobFailure
from core.settings import Settings
from core.storage import Storage


def detached(session: Session, table: type, key: str):
    """`table[key]`, detached from the session so it outlives the transaction."""
    row = session.get(table, key)
    if row is not None:
        session.expunge(row)
    return row


def start_weights(
    settings: Settings, storage: Storage, job: Job, method: str
) -> tuple[Path, Path | None, StoredModel | None]:
    """(weights to load, artifact of the `ft:` model the job continues, the `ft:` model
    merged into those weights): continuing methods get the parent's artifact, MERGED_START
    methods its merged weights."""
    if job.model == job.base_model:
        return base_model_path(settings, job.base_model), None, None
    row = db_retry(settings, "model lookup", lambda s: detached(s, Model, job.model))
    if row is None or row.artifact_key is None:
        raise JobFailure("model_not_found", f"{job.model} was deleted", "model")
    parent = StoredModel.of(row)
    store = ModelStore(settings, storage)
    if method in MERGED_START:
        from core.adapters import AdapterUnsupported

        try:
            return store.merged_dir(parent), None, parent
        except AdapterUnsupported as exc:
            raise JobFailure("unsupported_model", f"{job.model}: {exc}", "model") from exc
    return store.base_dir(parent), store.artifact_dir(parent), None
