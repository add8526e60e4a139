"""`/v1/fine_tuning/sweeps`: hyperparameter searches whose trials are fine-tuning jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import OrgDep, SessionDep
from api.schemas import ListResponse
from api.schemas_sweeps import SweepObject
from core.sweeps import service as sweeps
from core.sweeps.spec import SweepCreate

router = APIRouter(prefix="/v1/fine_tuning/sweeps", tags=["fine-tuning"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", name="createFineTuningSweep", response_model=SweepObject)
def create(body: SweepCreate, org: OrgDep, session: SessionDep) -> SweepObject:
    """Create the sweep and start its first `max_parallel` trials."""
    from worker.celery_app import enqueue_job

    sweep, started = sweeps.create_sweep(session, org.id, body)
    session.commit()  # the worker must find the rows the messages name
    for job_id in started:
        enqueue_job(job_id)
    return SweepObject.from_row(session, sweep)


@router.get("", name="listFineTuningSweeps", response_model=ListResponse[SweepObject])
def list_sweeps(
    org: OrgDep, session: SessionDep, after: str | None = None, limit: Limit = 20
) -> ListResponse[SweepObject]:
    rows, more = sweeps.list_sweeps(session, org.id, after, limit)
    return ListResponse.of([SweepObject.from_row(session, r) for r in rows], more)


@router.get("/{sweep_id}", name="retrieveFineTuningSweep", response_model=SweepObject)
def retrieve(sweep_id: str, org: OrgDep, session: SessionDep) -> SweepObject:
    return SweepObject.from_row(session, sweeps.get_sweep(session, org.id, sweep_id))


@router.post("/{sweep_id}/cancel", name="cancelFineTuningSweep", response_model=SweepObject)
def cancel(sweep_id: str, org: OrgDep, session: SessionDep) -> SweepObject:
    """Cancel the sweep and its unfinished trials (their workers stop at the next step)."""
    sweep = sweeps.cancel_sweep(session, org.id, sweep_id)
    session.commit()  # no trial starts from here on
    sweeps.cancel_trials(session, sweep)
    session.commit()
    return SweepObject.from_row(session, sweep)
