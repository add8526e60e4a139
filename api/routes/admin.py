"""`/v1/admin`: the operator's key and organization management, with `LATHE_ADMIN_KEY` as the
bearer key (an organization's key is a 401 here). Lathe's own; `lathe keys|orgs` do the same."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, KeyCacheDep, SessionDep, StorageDep
from api.schemas import DeletedObject, ListResponse
from api.schemas_admin import ApiKeyObject, CreateKeyRequest, OrganizationObject
from core import admin

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/keys", name="adminListKeys", response_model=ListResponse[ApiKeyObject])
def list_keys(_: AdminDep, session: SessionDep, org: str | None = None) -> ListResponse:
    return ListResponse.of([ApiKeyObject.of(k) for k in admin.list_keys(session, org)])


@router.post("/keys", name="adminCreateKey", response_model=ApiKeyObject)
def create_key(_: AdminDep, body: CreateKeyRequest, session: SessionDep) -> ApiKeyObject:
    info, key = admin.create_key(session, body.org, body.name)
    session.commit()
    return ApiKeyObject.of(info, key)


@router.post("/keys/{key_id}/revoke", name="adminRevokeKey", response_model=ApiKeyObject)
def revoke_key(_: AdminDep, key_id: str, session: SessionDep, cache: KeyCacheDep) -> ApiKeyObject:
    """Effective on the key's next request: this process forgets it now; other API processes
    within LATHE_AUTH_CACHE_TTL_S."""
    info = admin.revoke_key(session, key_id)
    session.commit()
    cache.forget_key_ids({info.id})
    return ApiKeyObject.of(info)


@router.get(
    "/organizations", name="adminListOrganizations", response_model=ListResponse[OrganizationObject]
)
def list_orgs(_: AdminDep, session: SessionDep) -> ListResponse:
    return ListResponse.of([OrganizationObject.of(o) for o in admin.list_orgs(session)])


@router.delete("/organizations/{org}", name="adminDeleteOrganization", response_model=DeletedObject)
def delete_org(
    _: AdminDep, org: str, session: SessionDep, storage: StorageDep, cache: KeyCacheDep
) -> DeletedObject:
    """The organization and everything it owns: keys, files, jobs, models, stored objects."""
    key_ids = admin.delete_org(session, storage, org)
    session.commit()
    cache.forget_key_ids(set(key_ids))
    return DeletedObject(id=org, object="organization")
