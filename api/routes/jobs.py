"""`/v1/fine_tuning/jobs`: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import OrgDep, SessionDep, SettingsDep, StorageDep
from api.event_stream import event_stream
from api.schemas import CheckpointObject, FineTuningJob, JobEventObject, ListResponse
from core.errors import InvalidRequest
from core.jobs import service
from core.jobs.dependencies import waiting
from core.jobspec.job import JobCreate

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", name="createFineTuningJob", response_model=FineTuningJob)
def create_job(body: JobCreate, org: OrgDep, session: SessionDep) -> FineTuningJob:
    from worker.celery_app import enqueue_job

    job = service.create_job(session, org.id, body)
    session.commit()  # the worker must find the row the message names
    if not waiting(job):  # a job using other jobs' models is enqueued when they succeed
        enqueue_job(job.id)
    return FineTuningJob.from_row(job, session)


@router.get("", name="listFineTuningJobs", response_model=ListResponse[FineTuningJob])
def list_jobs(
    request: Request,
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 20,
) -> ListResponse[FineTuningJob]:
    """`?metadata[key]=value` filters on job metadata, as OpenAI's list does. Any other
    query key is refused, not ignored: a client that spells the filter `?key=value` (as
    openapi-python-client does for deepObject) would otherwise get every job back."""
    for key in request.query_params:
        if key not in ("after", "limit") and not (key.startswith("metadata[") and key[-1] == "]"):
            raise InvalidRequest(
                f"Unknown query parameter '{key}'; filter on metadata with metadata[key]=value",
                param=key,
            )
    metadata = {
        k[len("metadata[") : -1]: v
        for k, v in request.query_params.items()
        if k.startswith("metadata[") and k.endswith("]")
    }
    rows, more = service.list_jobs(session, org.id, after, limit, metadata)
    return ListResponse.of([FineTuningJob.from_row(r, session) for r in rows], more)


@router.get("/{fine_tuning_job_id}", name="retrieveFineTuningJob", response_model=FineTuningJob)
def retrieve_job(fine_tuning_job_id: str, org: OrgDep, session: SessionDep) -> FineTuningJob:
    return FineTuningJob.from_row(service.get_job(session, org.id, fine_tuning_job_id), session)


@router.post(
    "/{fine_tuning_job_id}/cancel", name="cancelFineTuningJob", response_model=FineTuningJob
)
def cancel_job(
    fine_tuning_job_id: str, org: OrgDep, session: SessionDep, storage: StorageDep
) -> FineTuningJob:
    job = service.cancel_job(session, org.id, fine_tuning_job_id, storage)
    session.commit()
    return FineTuningJob.from_row(job, session)


@router.post("/{fine_tuning_job_id}/pause", name="pauseFineTuningJob", response_model=FineTuningJob)
def pause_job(fine_tuning_job_id: str, org: OrgDep, session: SessionDep) -> FineTuningJob:
    job = service.pause_job(session, org.id, fine_tuning_job_id)
    session.commit()
    return FineTuningJob.from_row(job, session)


@router.post(
    "/{fine_tuning_job_id}/resume", name="resumeFineTuningJob", response_model=FineTuningJob
)
def resume_job(fine_tuning_job_id: str, org: OrgDep, session: SessionDep) -> FineTuningJob:
    from worker.celery_app import enqueue_job

    job = service.resume_job(session, org.id, fine_tuning_job_id)
    session.commit()  # the worker must find the job queued
    enqueue_job(job.id)
    return FineTuningJob.from_row(job, session)


@router.get(
    "/{fine_tuning_job_id}/events",
    name="listFineTuningEvents",
    response_model=ListResponse[JobEventObject],
    responses={200: {"content": {"text/event-stream": {}}}},
)
def list_events(
    request: Request,
    fine_tuning_job_id: str,
    org: OrgDep,
    session: SessionDep,
    settings: SettingsDep,
    after: str | None = None,
    limit: Limit = 20,
    stream: Annotated[
        bool,
        Query(
            description="Lathe: server-sent events instead of a page, oldest first, each "
            "with its event id; resume with the Last-Event-ID header. Ends with [DONE] once "
            "the job has finished."
        ),
    ] = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> ListResponse[JobEventObject] | StreamingResponse:
    if stream:
        for name in ("after", "limit"):  # a page's cursor means nothing to a stream
            if name in request.query_params:
                raise InvalidRequest(
                    f"'{name}' does not apply with stream=true (resume with Last-Event-ID)",
                    param=name,
                )
        service.get_job(session, org.id, fine_tuning_job_id)
        session.close()  # the stream polls with short sessions of its own
        return event_stream(settings.resolved_database_url, fine_tuning_job_id, last_event_id)
    if last_event_id is not None:
        raise InvalidRequest("Last-Event-ID applies only with stream=true", param="Last-Event-ID")
    rows, more = service.list_events(session, org.id, fine_tuning_job_id, after, limit)
    return ListResponse.of([JobEventObject.from_row(r) for r in rows], more)


@router.get(
    "/{fine_tuning_job_id}/checkpoints",
    name="listFineTuningJobCheckpoints",
    response_model=ListResponse[CheckpointObject],
)
def list_checkpoints(
    fine_tuning_job_id: str,
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 10,
) -> ListResponse[CheckpointObject]:
    rows, more = service.list_checkpoints(session, org.id, fine_tuning_job_id, after, limit)
    return ListResponse.of([CheckpointObject.from_row(r) for r in rows], more)
