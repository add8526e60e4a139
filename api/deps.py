"""Request-scoped dependencies as `Annotated` aliases, so routes read as plain signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.auth import authenticate
from core.errors import Unauthorized
from core.inference.client import InferenceClient
from core.persistence.db import session_scope
from core.persistence.models import Organization
from core.settings import Settings
from core.storage import Storage, get_storage


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.resolved_database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_org(request: Request, session: SessionDep) -> Organization:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    return authenticate(session, key.strip())


OrgDep = Annotated[Organization, Depends(get_org)]


def get_storage_dep(settings: SettingsDep) -> Storage:
    return get_storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage_dep)]


def get_engine(request: Request) -> InferenceClient:
    """The inference service's client: generation never runs in the API process."""
    return request.app.state.engine


EngineDep = Annotated[InferenceClient, Depends(get_engine)]
