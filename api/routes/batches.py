"""OpenAI's Batch API: `/v1/batches` (create, retrieve, list, cancel). The batch runs on a
worker (worker.batches), never here; this records it and puts it on the queue."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OrgDep, SessionDep, SettingsDep
from api.schemas import ListResponse
from core.batches import service

router = APIRouter(prefix="/v1/batches", tags=["batches"])


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_file_id: str
    endpoint: str = Field(description=", ".join(service.ENDPOINTS))
    completion_window: str = Field(description="Only 24h.")
    metadata: dict[str, str] | None = Field(None, max_length=16)


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchObject(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: dict[str, Any] | None = None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, str] | None = None


@router.post("", name="createBatch", response_model=BatchObject)
def create_batch(
    body: BatchCreate, org: OrgDep, session: SessionDep, settings: SettingsDep
) -> dict:
    from worker.celery_app import enqueue_batch

    row = service.create_batch(
        session, settings, org.id, body.input_file_id, body.endpoint,
        body.completion_window, body.metadata,
    )  # fmt: skip
    session.commit()  # the worker must find the row the message names
    enqueue_batch(row.id, 0)
    return service.to_object(row)


@router.get("", name="listBatches", response_model=ListResponse[BatchObject])
def list_batches(
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListResponse[BatchObject]:
    rows, more = service.list_batches(session, org.id, after, limit)
    return ListResponse.of([BatchObject(**service.to_object(r)) for r in rows], more)


@router.get("/{batch_id}", name="retrieveBatch", response_model=BatchObject)
def retrieve_batch(batch_id: str, org: OrgDep, session: SessionDep) -> dict:
    return service.to_object(service.get_batch(session, org.id, batch_id))


@router.post("/{batch_id}/cancel", name="cancelBatch", response_model=BatchObject)
def cancel_batch(batch_id: str, org: OrgDep, session: SessionDep) -> dict:
    return service.to_object(service.cancel_batch(session, org.id, batch_id))
