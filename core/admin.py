"""Operator actions on keys and organizations: list, revoke, delete. The `lathe keys|orgs`
commands and the /v1/admin endpoints both call these, so they behave the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.auth import create_api_key, hash_key
from core.errors import Conflict, NotFound
from core.persistence.batch_models import Batch
from core.persistence.drift_models import DriftSample
from core.persistence.eval_models import Eval, EvalOutputItem, EvalRun
from core.persistence.models import (
    ApiKey,
    Checkpoint,
    File,
    Job,
    JobEvent,
    Model,
    Organization,
    utcnow,
)
from core.persistence.upload_models import Upload, UploadPart
from core.storage import Storage


@dataclass(frozen=True)
class KeyInfo:
    id: str
    organization: str
    name: str | None
    display: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class OrgInfo:
    id: str
    name: str
    created_at: datetime
    active_keys: int


def list_keys(session: Session, org_name: str | None = None) -> list[KeyInfo]:
    """Every key (revoked ones too, with when), oldest first; never the key itself."""
    query = select(ApiKey, Organization.name).join(
        Organization, Organization.id == ApiKey.organization_id
    )
    if org_name is not None:
        query = query.where(Organization.name == _org(session, org_name).name)
    rows = session.execute(query.order_by(ApiKey.created_at, ApiKey.id))
    return [KeyInfo(k.id, org, k.name, k.display, k.created_at, k.revoked_at) for k, org in rows]


def create_key(session: Session, org_name: str, name: str | None = None) -> tuple[KeyInfo, str]:
    """A new key (and its organization if new): its description and the key, shown once."""
    key = create_api_key(session, org_name, name)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    return KeyInfo(row.id, org_name, row.name, row.display, row.created_at, None), key


def revoke_key(session: Session, key_id: str) -> KeyInfo:
    """Revoke a key by its id (`key_…`, as `list_keys` shows it). Revoking twice keeps the
    first time."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No such API key: {key_id}", param="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    org = session.get(Organization, key.organization_id)
    return KeyInfo(key.id, org.name, key.name, key.display, key.created_at, key.revoked_at)


def list_orgs(session: Session) -> list[OrgInfo]:
    live = func.count(ApiKey.id).filter(ApiKey.revoked_at.is_(None))
    rows = session.execute(
        select(Organization, live)
        .outerjoin(ApiKey, ApiKey.organization_id == Organization.id)
        .group_by(Organization.id)
        .order_by(Organization.created_at, Organization.id)
    )
    return [OrgInfo(o.id, o.name, o.created_at, n) for o, n in rows]


def _org(session: Session, name: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"No such organization: {name}", param="org")
    return org


def delete_org(session: Session, storage: Storage, name: str) -> list[str]:
    """Delete an organization with its keys, files, jobs (events, checkpoints), models and
    stored objects; returns the ids of the keys it had (an auth cache forgets them).

    Refused (409) while one of its jobs runs: a worker is writing that job's rows and
    objects; cancel the job and delete once it has stopped."""
    org = _org(session, name)
    running = session.scalar(
        select(func.count(Job.id)).where(Job.organization_id == org.id, Job.status == "running")
    )
    if running:
        raise Conflict(
            f"{name} has {running} running job(s): cancel them, then delete the organization",
            param="org",
            code="org_busy",
        )
    jobs = select(Job.id).where(Job.organization_id == org.id)
    key_ids = list(session.scalars(select(ApiKey.id).where(ApiKey.organization_id == org.id)))
    session.execute(delete(JobEvent).where(JobEvent.job_id.in_(jobs)))
    session.execute(delete(Checkpoint).where(Checkpoint.job_id.in_(jobs)))
    uploads = select(Upload.id).where(Upload.organization_id == org.id)
    session.execute(delete(UploadPart).where(UploadPart.upload_id.in_(uploads)))
    for table in (EvalOutputItem, EvalRun, Eval, Job, Model, File, Upload, Batch, ApiKey,
                  DriftSample):  # fmt: skip
        session.execute(delete(table).where(table.organization_id == org.id))
    session.execute(delete(Organization).where(Organization.id == org.id))
    session.flush()
    storage.delete_prefix(f"orgs/{org.id}")
    return key_ids
