"""The tinker SDK's RestClient (`/api/v1/training_runs`, `/checkpoints`, `/weights_info`):
listing this organization's training runs and checkpoints, reading a checkpoint's LoRA
settings, deleting one. Thin routes over core.tinker.runs; excluded from the OpenAPI document
like the rest of Tinker's wire (api.routes.tinker)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import get_org
from api.routes.tinker import _db, _json
from core import exports
from core.errors import InvalidRequest, NotFound
from core.jobs import model_deletion
from core.persistence.models import Model
from core.storage import get_storage
from core.tinker import runs, service
from core.tinker.paths import make_path

router = APIRouter(prefix="/api/v1", include_in_schema=False)


@router.get("/training_runs")
async def list_training_runs(request: Request) -> dict[str, Any]:
    """`access_scope` owned or accessible: both are the key's organization's runs."""
    org, q = await get_org(request), request.query_params
    if q.get("project_id"):
        raise InvalidRequest("Lathe has no projects: leave project_id out", param="project_id")
    limit, offset = runs.page(q.get("limit", 20), q.get("offset", 0), 1000)
    return await _db(request, runs.list_runs, org.id, limit, offset)


@router.get("/training_runs/{run_id}")
async def get_training_run(run_id: str, request: Request) -> dict[str, Any]:
    org = await get_org(request)
    return await _db(request, runs.get_run, org.id, run_id)


@router.get("/training_runs/{run_id}/checkpoints")
async def list_checkpoints(run_id: str, request: Request) -> dict[str, Any]:
    org = await get_org(request)
    return await _db(request, runs.list_checkpoints, org.id, run_id)


@router.get("/checkpoints")
async def list_user_checkpoints(request: Request) -> dict[str, Any]:
    org, q = await get_org(request), request.query_params
    limit, offset = runs.page(q.get("limit", 100), q.get("offset", 0), 1000)
    return await _db(request, runs.list_checkpoints, org.id, None, limit, offset)


@router.post("/weights_info")
async def weights_info(request: Request) -> dict[str, Any]:
    org, body = await get_org(request), await _json(request)
    return await _db(request, runs.weights_info, org.id, str(body.get("tinker_path", "")))


@router.delete("/training_runs/{run_id}/checkpoints/{checkpoint_id:path}")
async def delete_checkpoint(run_id: str, checkpoint_id: str, request: Request) -> Response:
    """As `DELETE /v1/models/{path}` does (api.routes.models): the checkpoint, its served copy
    (named sampler weights are also a model) and its bytes."""
    org, state = await get_org(request), request.app.state
    kind, _, name = checkpoint_id.partition("/")
    if kind not in runs.TYPES or not name:
        raise NotFound(f"no checkpoint {checkpoint_id!r}", param="checkpoint_id")
    path = make_path(run_id, kind, name)

    def delete(db) -> model_deletion.Deleted:
        ckpt = service.get_checkpoint(db, org.id, path, param="checkpoint_id")
        if db.get(Model, path) is not None:
            return model_deletion.delete_model(db, org.id, path)
        db.delete(ckpt)
        return model_deletion.Deleted(prefixes=[ckpt.storage_key])

    deleted = await _db(request, delete)  # committed: then the bytes and the served copy

    def clean_up() -> None:
        storage = get_storage(state.settings)
        for row in deleted.models:
            state.engine.forget(row)
            if row.artifact_key:
                exports.remove_cached(storage, row.artifact_key)
        for prefix in deleted.prefixes:
            storage.delete_prefix(prefix)

    await run_in_threadpool(clean_up)
    return Response(status_code=204)
