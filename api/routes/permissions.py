"""`/v1/fine_tuning/checkpoints/{model}/permissions`: share a fine-tuned model or checkpoint
with other organizations, as OpenAI's checkpoint permissions (core.permissions).

    POST   …/permissions {"project_ids": ["org-…"]}  → list of checkpoint.permission
    GET    …/permissions?after&limit&order&project_id → list of checkpoint.permission
    DELETE …/permissions/{permission_id}              → {id, object, deleted}

Only the model's own organization manages its permissions; to anyone else the model is a 404.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OrgDep, SessionDep
from api.schemas import ListResponse
from core import permissions
from core.errors import InvalidRequest
from core.persistence.models import ModelPermission

router = APIRouter(prefix="/v1/fine_tuning/checkpoints", tags=["fine-tuning"])


class PermissionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project_ids: list[str] = Field(
        min_length=1,
        max_length=permissions.MAX_PROJECTS,
        description="Lathe organization ids (`org-…`) or names to share with (OpenAI's "
        "project ids).",
    )


class PermissionObject(BaseModel):
    id: str
    object: Literal["checkpoint.permission"] = "checkpoint.permission"
    created_at: int
    project_id: str = Field(description="The organization id the model is shared with.")

    @classmethod
    def from_row(cls, row: ModelPermission) -> PermissionObject:
        return cls(id=row.id, created_at=int(row.created_at.timestamp()), project_id=row.grantee_id)


class PermissionDeleted(BaseModel):
    id: str
    object: Literal["checkpoint.permission"] = "checkpoint.permission"
    deleted: bool = True


@router.post(
    "/{checkpoint:path}/permissions",
    name="createCheckpointPermission",
    response_model=ListResponse[PermissionObject],
)
def create_permissions(
    checkpoint: str, body: PermissionCreate, org: OrgDep, session: SessionDep
) -> ListResponse[PermissionObject]:
    rows = permissions.share(session, org.id, checkpoint, body.project_ids)
    session.commit()
    return ListResponse.of([PermissionObject.from_row(r) for r in rows])


@router.get(
    "/{checkpoint:path}/permissions",
    name="listCheckpointPermissions",
    response_model=ListResponse[PermissionObject],
)
def list_permissions(
    checkpoint: str,
    org: OrgDep,
    session: SessionDep,
    after: str | None = None,
    limit: int = Query(10, ge=1, le=100),
    order: Literal["ascending", "descending"] = "descending",
    project_id: str | None = None,
) -> ListResponse[PermissionObject]:
    rows = permissions.permissions(session, org.id, checkpoint, project_id)
    if order == "descending":
        rows.reverse()
    if after is not None:
        ids = [r.id for r in rows]
        if after not in ids:
            raise InvalidRequest(f"no permission {after!r} on {checkpoint}", param="after")
        rows = rows[ids.index(after) + 1 :]
    items = [PermissionObject.from_row(r) for r in rows[:limit]]
    return ListResponse.of(items, has_more=len(rows) > limit)


@router.delete(
    "/{checkpoint:path}/permissions/{permission_id}",
    name="deleteCheckpointPermission",
    response_model=PermissionDeleted,
)
def delete_permission(
    checkpoint: str, permission_id: str, org: OrgDep, session: SessionDep
) -> PermissionDeleted:
    permissions.unshare(session, org.id, checkpoint, permission_id)
    session.commit()
    return PermissionDeleted(id=permission_id)
