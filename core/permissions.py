"""Sharing a fine-tuned model or checkpoint with other organizations (OpenAI's checkpoint
permissions).

OpenAI grants a checkpoint to *projects*; Lathe has organizations, so a `project_id` is a
Lathe organization id (`org-…`; the organization's name is accepted too, and answered with its
id). The owner creates, lists and deletes permissions; the grantee may use the model for
inference (chat, completions, as a grader's judge) and as the `model` a job fine-tunes from —
nothing else: it is not in the grantee's model list, cannot be retrieved, downloaded or
deleted by it, and without a permission (or once it is deleted) it is a plain 404 to it.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound
from core.ids import new_id
from core.persistence.models import Model, ModelPermission, Organization

MAX_PROJECTS = 100
"""project_ids in one create request."""


def _owned(session: Session, org_id: str, model_id: str) -> Model:
    model = session.get(Model, model_id)
    if model is None or model.organization_id != org_id:
        raise NotFound(
            f"The checkpoint '{model_id}' does not exist",
            param="fine_tuned_model_checkpoint",
            code="model_not_found",
        )
    return model


def _grantee(session: Session, project_id: str, owner_id: str) -> Organization:
    org = session.scalar(
        select(Organization).where(
            or_(Organization.id == project_id, Organization.name == project_id)
        )
    )
    if org is None:
        raise InvalidRequest(
            f"no organization {project_id!r} (project_ids are Lathe organization ids)",
            param="project_ids",
        )
    if org.id == owner_id:
        raise InvalidRequest(
            "a model is always usable by its own organization", param="project_ids"
        )
    return org


def share(
    session: Session, org_id: str, model_id: str, project_ids: list[str]
) -> list[ModelPermission]:
    """One permission per project (an existing one is returned as it is)."""
    _owned(session, org_id, model_id)
    if not project_ids or len(project_ids) > MAX_PROJECTS:
        raise InvalidRequest(f"give 1 to {MAX_PROJECTS} project_ids", param="project_ids")
    granted: dict[str, ModelPermission] = {}
    for project_id in project_ids:
        grantee = _grantee(session, project_id, org_id)
        if grantee.id in granted:
            continue
        row = session.scalar(
            select(ModelPermission).where(
                ModelPermission.model_id == model_id, ModelPermission.grantee_id == grantee.id
            )
        )
        if row is None:
            row = ModelPermission(
                id=new_id("cp_"), model_id=model_id, organization_id=org_id, grantee_id=grantee.id
            )
            session.add(row)
        granted[grantee.id] = row
    session.flush()
    return list(granted.values())


def permissions(
    session: Session, org_id: str, model_id: str, project_id: str | None = None
) -> list[ModelPermission]:
    """The model's permissions, oldest first (optionally for one grantee)."""
    _owned(session, org_id, model_id)
    query = select(ModelPermission).where(ModelPermission.model_id == model_id)
    if project_id:
        query = query.join(Organization, Organization.id == ModelPermission.grantee_id).where(
            or_(Organization.id == project_id, Organization.name == project_id)
        )
    return list(session.scalars(query.order_by(ModelPermission.created_at, ModelPermission.id)))


def unshare(session: Session, org_id: str, model_id: str, permission_id: str) -> None:
    _owned(session, org_id, model_id)
    row = session.get(ModelPermission, permission_id)
    if row is None or row.model_id != model_id:
        raise NotFound(
            f"No permission '{permission_id}' on {model_id}",
            param="permission_id",
            code="permission_not_found",
        )
    session.delete(row)
    session.flush()


def shared_with(session: Session, org_id: str, model_id: str) -> bool:
    """Whether `model_id` is shared with the organization."""
    return (
        session.scalar(
            select(ModelPermission.id).where(
                ModelPermission.model_id == model_id, ModelPermission.grantee_id == org_id
            )
        )
        is not None
    )
