"""`/v1/evals`: OpenAI's Evals API as the official SDK calls it (`client.evals.*`).

    POST /v1/evals {data_source_config: {type: custom, item_schema}, testing_criteria: [...]}
    POST /v1/evals/{eval_id}/runs {data_source: {type: completions, model, source, ...}}
    GET  /v1/evals/{eval_id}/runs/{run_id}/output_items

Creating a run checks every row (400 naming the row or field) and queues it; a worker
executes it (core.evals.execute), never this process. Sync routes: database work only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from api.deps import OrgDep, SessionDep, SettingsDep, StorageDep
from api.schemas import ListResponse
from api.schemas_eval_api import (
    EvalDeleted,
    EvalObject,
    EvalRunDeleted,
    EvalRunObject,
    OutputItemObject,
)
from core.evals import service, wire
from core.evals.spec import EvalCreate, EvalUpdate, RunCreate

router = APIRouter(prefix="/v1/evals", tags=["evals"])

Limit = Annotated[int, Query(ge=1, le=100)]
Order = Literal["asc", "desc"]


def _base(request: Request) -> str:
    return str(request.base_url)


@router.post("", name="createEval", response_model=EvalObject)
def create(body: EvalCreate, org: OrgDep, session: SessionDep, settings: SettingsDep) -> Any:
    return wire.eval_object(service.create_eval(session, settings, org.id, body))


@router.get("", name="listEvals", response_model=ListResponse[EvalObject])
def list_evals(
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    order_by: Literal["created_at", "updated_at"] = "created_at",
) -> Any:
    rows, more = service.list_evals(session, org.id, after, limit, order, order_by)
    return ListResponse.of([EvalObject(**wire.eval_object(r)) for r in rows], more)


@router.get("/{eval_id}", name="retrieveEval", response_model=EvalObject)
def retrieve(eval_id: str, org: OrgDep, session: SessionDep) -> Any:
    return wire.eval_object(service.get_eval(session, org.id, eval_id))


@router.post("/{eval_id}", name="updateEval", response_model=EvalObject)
def update(eval_id: str, body: EvalUpdate, org: OrgDep, session: SessionDep) -> Any:
    return wire.eval_object(service.update_eval(session, org.id, eval_id, body))


@router.delete("/{eval_id}", name="deleteEval", response_model=EvalDeleted)
def delete(eval_id: str, org: OrgDep, session: SessionDep) -> Any:
    service.delete_eval(session, org.id, eval_id)
    return {"object": "eval.deleted", "deleted": True, "eval_id": eval_id}


@router.post("/{eval_id}/runs", name="createEvalRun", response_model=EvalRunObject)
def create_run(
    eval_id: str,
    body: RunCreate,
    request: Request,
    org: OrgDep,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
) -> Any:
    from worker.eval_tasks import enqueue_eval_run

    run = service.create_run(session, storage, settings, org.id, eval_id, body)
    session.commit()  # the worker must find the row the message names
    enqueue_eval_run(run.id)
    return wire.run_object(run, _base(request))


@router.get("/{eval_id}/runs", name="listEvalRuns", response_model=ListResponse[EvalRunObject])
def list_runs(
    eval_id: str,
    request: Request,
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Literal["queued", "in_progress", "completed", "canceled", "failed"] | None = None,
) -> Any:
    rows, more = service.list_runs(session, org.id, eval_id, after, limit, order, status)
    data = [EvalRunObject(**wire.run_object(r, _base(request))) for r in rows]
    return ListResponse.of(data, more)


@router.get("/{eval_id}/runs/{run_id}", name="retrieveEvalRun", response_model=EvalRunObject)
def retrieve_run(
    eval_id: str, run_id: str, request: Request, org: OrgDep, session: SessionDep
) -> Any:
    return wire.run_object(service.get_run(session, org.id, eval_id, run_id), _base(request))


@router.post("/{eval_id}/runs/{run_id}/cancel", name="cancelEvalRun", response_model=EvalRunObject)
def cancel_run(
    eval_id: str, run_id: str, request: Request, org: OrgDep, session: SessionDep
) -> Any:
    run = service.cancel_run(session, org.id, eval_id, run_id)
    return wire.run_object(run, _base(request))


@router.delete("/{eval_id}/runs/{run_id}", name="deleteEvalRun", response_model=EvalRunDeleted)
def delete_run(eval_id: str, run_id: str, org: OrgDep, session: SessionDep) -> Any:
    service.delete_run(session, org.id, eval_id, run_id)
    return {"object": "eval.run.deleted", "deleted": True, "run_id": run_id}


@router.get(
    "/{eval_id}/runs/{run_id}/output_items",
    name="listEvalRunOutputItems",
    response_model=ListResponse[OutputItemObject],
)
def list_items(
    eval_id: str,
    run_id: str,
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Literal["pass", "fail"] | None = None,
) -> Any:
    rows, more = service.list_items(session, org.id, eval_id, run_id, after, limit, order, status)
    return ListResponse.of([OutputItemObject(**wire.item_object(r)) for r in rows], more)


@router.get(
    "/{eval_id}/runs/{run_id}/output_items/{output_item_id}",
    name="retrieveEvalRunOutputItem",
    response_model=OutputItemObject,
)
def retrieve_item(
    eval_id: str, run_id: str, output_item_id: str, org: OrgDep, session: SessionDep
) -> Any:
    return wire.item_object(service.get_item(session, org.id, eval_id, run_id, output_item_id))
