"""`/v1/fine_tuning/pipelines`: several dependent fine-tuning jobs from one request."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import OrgDep, SessionDep
from api.schemas import FineTuningJob, ListResponse
from core.jobs.dependencies import waiting
from core.jobs.pipeline import PipelineCreate, create_pipeline

router = APIRouter(prefix="/v1/fine_tuning/pipelines", tags=["fine-tuning"])


@router.post("", name="createFineTuningPipeline", response_model=ListResponse[FineTuningJob])
def create(body: PipelineCreate, org: OrgDep, session: SessionDep) -> ListResponse[FineTuningJob]:
    """Create one job per stage; stages wait for the stages whose models they use."""
    from worker.celery_app import enqueue_job

    jobs = create_pipeline(session, org.id, body)
    session.commit()  # the worker must find the rows the messages name
    for job in jobs:
        if not waiting(job):
            enqueue_job(job.id)
    return ListResponse.of([FineTuningJob.from_row(job) for job in jobs])
