"""Authentication and rate limits for every route, before a byte of the body is read.

A pure ASGI middleware: it sees only the headers, answers 401 (no or a wrong key), 429 (an
organization over its request rate, a client IP over its failed-authentication rate) or 503 (the
key could not be looked up) without calling `receive`, so an unauthenticated 200 MB body is never
parsed nor spooled to disk. Key look-ups are cached for `auth_cache_ttl_s` and run in the
thread pool with a session of their own that is closed before the request goes on, so no
request holds a database connection while it waits for a thread.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response, outage_response
from api.sessions import SessionSlots
from core.auth import AuthedOrg, hash_key, lookup_key
from core.errors import LatheError, TooManyRequests, Unauthorized
from core.persistence.db import session_scope
from core.ratelimit import RateLimits
from core.settings import Settings

PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
API_PREFIX = "/v1/"
TINKER_PREFIX = "/api/v1/"
"""The tinker SDK's wire (api.routes.tinker): it sends its key as `X-API-Key: <key>`."""
TINKER_PUBLIC = frozenset({"/api/v1/healthz", "/api/v1/telemetry"})
TINKER_KEY_PREFIX = "tml-"
LEGACY_TINKER_KEY = TINKER_KEY_PREFIX + "sk-lathe-"


def is_public(path: str) -> bool:
    """Only the API under /v1 (and Tinker's under /api/v1) takes a key; health, the spec, /docs
    and the dashboard's pages (which sign in from the browser and then call /v1 with the key)
    are open."""
    if path.startswith(TINKER_PREFIX):
        return path in TINKER_PUBLIC
    return path in PUBLIC_PATHS or not path.startswith(API_PREFIX)


ADMIN_PREFIX = "/v1/admin"
STATE_KEY = "lathe_org"
"""Where the authenticated organization is left in the request's state (`request.state`)."""

ADMIN = AuthedOrg(id="", name="(operator)", key_id="admin")
"""The principal of a request made with `LATHE_ADMIN_KEY`: it belongs to no organization."""


@dataclass
class _Entry:
    org: AuthedOrg | None
    expires: float


class KeyCache:
    """Key digest → organization, for a few seconds: a burst of requests with one key costs one
    look-up. Revoking through the admin API drops the entry at once (`forget`)."""

    def __init__(self, settings: Settings, slots: SessionSlots) -> None:
        self.settings = settings
        self.slots = slots
        self.ttl = settings.security.auth_cache_ttl_s
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[AuthedOrg | None]] = {}

    async def lookup(self, key: str) -> AuthedOrg | None:
        digest = hash_key(key)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry.expires > now:
            return entry.org
        if (pending := self._pending.get(digest)) is not None:  # one look-up per key at a time
            return await asyncio.shield(pending)
        pending = self._pending[digest] = asyncio.get_running_loop().create_future()
        try:
            async with self.slots.hold():  # a connection, like a request's session
                org = await run_in_threadpool(self._query, key)
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: no "never retrieved" warning when none waited
            raise
        finally:
            del self._pending[digest]
        pending.set_result(org)
        if self.ttl > 0:
            if len(self._entries) > 10_000:  # wrong keys must not grow it without bound
                self._entries.clear()
            self._entries[digest] = _Entry(org, now + self.ttl)
        return org

    def _query(self, key: str) -> AuthedOrg | None:
        with session_scope(self.settings.resolved_database_url) as session:
            return lookup_key(session, key)

    def forget_key_ids(self, key_ids: set[str]) -> None:
        for digest, entry in list(self._entries.items()):
            if entry.org is not None and entry.org.key_id in key_ids:
                del self._entries[digest]

    def clear(self) -> None:
        self._entries.clear()


def request_key(scope: Scope) -> str | None:
    """`Authorization: Bearer <key>`, or the tinker SDK's `X-API-Key: <key>`. Keys Lathe
    issues start `tml-lathe-` and work as they are with both SDKs (core.ids); the tinker SDK
    refuses keys without `tml-`, so an older `sk-lathe-…` key is given to it as
    `tml-sk-lathe-…`, and that `tml-` is dropped here."""
    for name, value in scope.get("headers", []):
        if name == b"x-api-key":
            key = value.decode("latin-1").strip()
            if key.startswith(LEGACY_TINKER_KEY):
                key = key.removeprefix(TINKER_KEY_PREFIX)
            return key or None
    return bearer_key(scope)


def bearer_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return key.strip() or None
    return None


def has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class Gate:
    def __init__(self, app: ASGIApp, settings: Settings, cache: KeyCache, limits: RateLimits):
        self.app = app
        self.settings = settings
        self.cache = cache
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            org = await self._authenticate(scope)
            if org is not ADMIN:
                await self.limits.hit(self.limits.requests, org.id)
        except LatheError as exc:
            await self._refuse(scope, receive, send, error_response(exc))
            return
        except Exception as exc:  # the key could not be looked up: 503, else a bug
            if (response := outage_response(exc)) is None:
                raise
            await self._refuse(scope, receive, send, response)
            return
        scope.setdefault("state", {})[STATE_KEY] = org
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> AuthedOrg:
        key = request_key(scope)
        if key is None:
            raise Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                code="missing_api_key",
            )
        if scope["path"].startswith(ADMIN_PREFIX):
            org = ADMIN if self._is_admin_key(key) else None
        else:
            org = await self.cache.lookup(key)
        if org is None:  # only failing authentication is slowed down: tenants share addresses
            ip = (scope.get("client") or ("unknown",))[0]
            if wait := await self.limits.blocked(self.limits.failed_auth, ip):
                raise TooManyRequests(
                    "Too many requests with invalid API keys from your address; try again later.",
                    retry_after=wait,
                )
            await self.limits.hit(self.limits.failed_auth, ip)
            raise Unauthorized("Incorrect API key provided.")
        return org

    def _is_admin_key(self, key: str) -> bool:
        admin = self.settings.security.admin_key
        return bool(admin) and hmac.compare_digest(key.encode(), admin.encode())

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, response) -> None:
        """Answer without reading the body; with a body pending the connection closes, so its
        rest is never read."""
        if has_body(scope):
            response.headers["connection"] = "close"
        await response(scope, receive, send)
