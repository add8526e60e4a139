"""Request-scoped dependencies as `Annotated` aliases, so routes read as plain signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.gate import ADMIN, STATE_KEY, KeyCache
from core.auth import AuthedOrg
from core.errors import Unauthorized
from core.inference.client import InferenceClient
from core.ratelimit import RateLimits
from core.settings import Settings
from core.storage import Storage, get_storage


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(request: Request, settings: SettingsDep) -> AsyncIterator[Session]:
    """A session per request, in one of `api.sessions`' bounded slots. Function-scoped: it
    closes when the route (and its serialization) is done, before a streamed body is sent, so
    a slow download holds no slot."""
    async with request.app.state.session_slots.session(settings.resolved_database_url) as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_org(request: Request) -> AuthedOrg:
    """The organization `api.gate` authenticated. Async, with no database work: a sync
    dependency that looked the key up would hold a connection while the route waited for a
    thread, and under a burst every thread would wait on a connection held by such a request."""
    org = request.scope.get("state", {}).get(STATE_KEY)
    if org is None or org is ADMIN:  # the operator key is for /v1/admin only
        raise Unauthorized("Incorrect API key provided.")
    return org


OrgDep = Annotated[AuthedOrg, Depends(get_org)]


async def require_admin(request: Request) -> None:
    if request.scope.get("state", {}).get(STATE_KEY) is not ADMIN:
        raise Unauthorized("This endpoint needs the operator key (LATHE_ADMIN_KEY).")


AdminDep = Annotated[None, Depends(require_admin)]


async def get_limits(request: Request) -> RateLimits:
    return request.app.state.limits


LimitsDep = Annotated[RateLimits, Depends(get_limits)]


async def get_key_cache(request: Request) -> KeyCache:
    return request.app.state.key_cache


KeyCacheDep = Annotated[KeyCache, Depends(get_key_cache)]


async def get_storage_dep(settings: SettingsDep) -> Storage:
    """Async: the store is made once when the app is (create_app), so this never blocks."""
    return get_storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage_dep)]


async def get_engine(request: Request) -> InferenceClient:
    """The inference service's client: generation never runs in the API process."""
    return request.app.state.engine


EngineDep = Annotated[InferenceClient, Depends(get_engine)]
