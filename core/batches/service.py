"""The Batch API's API side: create, read, list and cancel batches, as OpenAI's objects.

Creating one checks what can be checked without reading the requests (the endpoint, the
window, the file's purpose and size, the organization's bound) and enqueues it; the lines are
read on a worker (worker.batches), where a bad line becomes an error-file line, never a
failed batch.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound, TooManyRequests
from core.files import get_file
from core.ids import new_id
from core.persistence.batch_models import Batch
from core.persistence.models import utcnow
from core.persistence.pagination import page
from core.settings import Settings

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
UNFINISHED = ("validating", "in_progress", "finalizing", "cancelling")
DONE = ("completed", "failed", "cancelled", "expired")
WINDOW = "24h"


def create_batch(
    session: Session,
    settings: Settings,
    org_id: str,
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    metadata: dict[str, str] | None,
) -> Batch:
    if endpoint not in ENDPOINTS:
        raise InvalidRequest(f"endpoint must be one of {', '.join(ENDPOINTS)}", param="endpoint")
    if completion_window != WINDOW:
        raise InvalidRequest("completion_window must be 24h", param="completion_window")
    file = get_file(session, org_id, input_file_id, param="input_file_id")
    if file.purpose != "batch":
        raise InvalidRequest(
            f"{input_file_id} was uploaded with purpose {file.purpose!r}, not 'batch'",
            param="input_file_id",
        )
    if (file.n_examples or 0) > settings.batches.max_requests:
        raise InvalidRequest(
            f"{input_file_id} holds {file.n_examples} requests; a batch takes at most "
            f"{settings.batches.max_requests}",
            param="input_file_id",
        )
    active = session.scalar(
        select(func.count())
        .select_from(Batch)
        .where(Batch.organization_id == org_id, Batch.status.in_(UNFINISHED))
    )
    if (active or 0) >= settings.batches.max_active:
        raise TooManyRequests(
            f"this organization has {active} unfinished batches (at most "
            f"{settings.batches.max_active}); wait for one to finish",
            retry_after=60,
        )
    now = utcnow()
    row = Batch(
        id=new_id("batch_"),
        organization_id=org_id,
        endpoint=endpoint,
        input_file_id=input_file_id,
        completion_window=WINDOW,
        status="validating",
        batch_metadata=metadata,
        total=file.n_examples or 0,
        created_at=now,
        expires_at=now + timedelta(hours=24),
    )
    session.add(row)
    session.flush()
    return row


def get_batch(session: Session, org_id: str, batch_id: str) -> Batch:
    row = session.get(Batch, batch_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"No such batch: {batch_id}", param="batch_id", code="batch_not_found")
    return row


def list_batches(
    session: Session, org_id: str, after: str | None, limit: int
) -> tuple[list[Batch], bool]:
    cursor = get_batch(session, org_id, after) if after else None
    query = select(Batch).where(Batch.organization_id == org_id)
    return page(session, query, Batch, cursor, limit, desc=True)


def cancel_batch(session: Session, org_id: str, batch_id: str) -> Batch:
    """A batch not started yet is cancelled at once; a running one stops after the requests
    in flight (its worker finalizes what it has: partial output and error files)."""
    row = get_batch(session, org_id, batch_id)
    if row.status in DONE or row.status == "cancelling":
        return row
    now = utcnow()
    row.cancelling_at = now
    if row.status == "validating" and row.next_line == 0 and row.lease_until is None:
        row.status, row.cancelled_at = "cancelled", now
    else:
        row.status = "cancelling"
    return row


def stale_batches(session: Session, after_s: float) -> list[tuple[str, int]]:
    """(batch, next line) to enqueue again: queued longer than `after_s` with no worker on it
    (a lost message, or one waiting behind long jobs: the duplicate is dropped when it runs),
    or whose worker's lease ran out (it died mid-slice)."""
    now = utcnow()
    rows = session.scalars(select(Batch).where(Batch.status.in_(UNFINISHED)))
    out = []
    for row in rows:
        queued = row.enqueued_at or row.created_at
        if row.lease_until is not None and row.lease_until >= now:
            continue
        if row.lease_until is not None or queued < now - timedelta(seconds=after_s):
            row.enqueued_at, row.lease_until = now, None
            out.append((row.id, row.next_line))
    return out


def parts_prefix(row: Batch) -> str:
    """Where a running batch's results wait, a slice per part, until it is finalized."""
    return f"orgs/{row.organization_id}/batches/{row.id}"


def live_prefixes(session: Session) -> set[str]:
    """The parts of unfinished batches: the sweeper must keep them."""
    rows = session.scalars(select(Batch).where(Batch.status.in_(UNFINISHED)))
    return {parts_prefix(row) for row in rows}


def _ts(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def to_object(row: Batch) -> dict[str, Any]:
    """OpenAI's Batch object."""
    return {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "errors": row.errors,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": _ts(row.created_at),
        "in_progress_at": _ts(row.in_progress_at),
        "expires_at": _ts(row.expires_at),
        "finalizing_at": _ts(row.finalizing_at),
        "completed_at": _ts(row.completed_at),
        "failed_at": _ts(row.failed_at),
        "expired_at": None,
        "cancelling_at": _ts(row.cancelling_at),
        "cancelled_at": _ts(row.cancelled_at),
        "request_counts": {"total": row.total, "completed": row.completed, "failed": row.failed},
        "metadata": row.batch_metadata,
    }
