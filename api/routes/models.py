"""`/v1/models`: base models and this organization's fine-tuned ones."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.content_disposition import attachment
from api.deps import EngineDep, OrgDep, SessionDep, SettingsDep, StorageDep
from api.schemas import DeletedObject, ListResponse, ModelObject
from api.streams import started
from core import bundles, exports, registry
from core.jobs import model_deletion
from core.model_store import StoredModel

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", name="listModels", response_model=ListResponse[ModelObject])
def list_models(org: OrgDep, session: SessionDep) -> ListResponse[ModelObject]:
    return ListResponse.of(
        [ModelObject.from_row(m) for m in registry.visible_models(session, org.id)]
    )


# Before retrieveModel: its `{model:path}` would otherwise swallow the `/content` suffix.
@router.get(
    "/{model:path}/content",
    name="downloadModel",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def download_model(
    model: str,
    org: OrgDep,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    format: Literal["merged", "bundle"] | None = None,
) -> StreamingResponse:
    """The model's weights as a zip that loads as downloaded: the stored artifact, with its
    base under base/ where that base is on no hub and handed out here (core.bundles); with
    `format=merged` a standalone model with the adapter folded in, with `format=bundle` the
    adapter and its base whatever the base. A sync route: merging blocks for a while."""
    stored = StoredModel.of(registry.get_model(session, org.id, model))
    if format == "bundle":
        body = bundles.bundle_zip(settings, storage, stored)
        name = exports.download_name(stored.id).removesuffix(".zip") + "-bundle.zip"
    elif format == "merged":
        body = exports.model_zip(settings, storage, stored, merged=True)
        name = exports.download_name(stored.id, merged=True)
    else:
        body = bundles.download_zip(settings, storage, stored)
        name = exports.download_name(stored.id)
    return StreamingResponse(
        started(body),
        media_type="application/zip",
        headers={"Content-Disposition": attachment(name)},
    )


@router.get("/{model:path}", name="retrieveModel", response_model=ModelObject)
def retrieve_model(model: str, org: OrgDep, session: SessionDep) -> ModelObject:
    return ModelObject.from_row(registry.get_model(session, org.id, model))


@router.delete("/{model:path}", name="deleteModel", response_model=DeletedObject)
def delete_model(
    model: str, org: OrgDep, session: SessionDep, storage: StorageDep, engine: EngineDep
) -> DeletedObject:
    """A fine-tuned model goes with its job's checkpoints (core.jobs.model_deletion)."""
    deleted = model_deletion.delete_model(session, org.id, model)
    session.commit()
    for row in deleted.models:
        engine.forget(row)  # the inference service unloads it
        if row.artifact_key:
            exports.remove_cached(storage, row.artifact_key)
    for prefix in deleted.prefixes:
        storage.delete_prefix(prefix)
    return DeletedObject(id=model, object="model")
