"""`/v1/models`: base models and this organization's fine-tuned ones."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep, OrgDep, SessionDep, StorageDep
from api.schemas import DeletedObject, ListResponse, ModelObject
from core import registry

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", name="listModels", response_model=ListResponse[ModelObject])
def list_models(org: OrgDep, session: SessionDep) -> ListResponse[ModelObject]:
    return ListResponse.of(
        [ModelObject.from_row(m) for m in registry.visible_models(session, org.id)]
    )


@router.get("/{model:path}", name="retrieveModel", response_model=ModelObject)
def retrieve_model(model: str, org: OrgDep, session: SessionDep) -> ModelObject:
    return ModelObject.from_row(registry.get_model(session, org.id, model))


@router.delete("/{model:path}", name="deleteModel", response_model=DeletedObject)
def delete_model(
    model: str, org: OrgDep, session: SessionDep, storage: StorageDep, engine: EngineDep
) -> DeletedObject:
    row = registry.delete_model(session, org.id, model)
    session.commit()
    engine.cache.discard(row.id)
    if row.artifact_key:
        storage.delete_prefix(row.artifact_key)
    return DeletedObject(id=model, object="model")
