"""Liveness and readiness, the only routes without an API key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import SettingsDep
from core import readiness

router = APIRouter(tags=["health"])


@router.get("/health", name="health")
async def health() -> dict[str, str]:
    """Answers from the event loop, without a thread or a database connection: under a burst
    that fills both, the process still says it is alive (a database outage shows as 503s on
    the routes that need it)."""
    return {"status": "ok"}


@router.get("/ready", name="ready", include_in_schema=False)  # operators', not clients'
async def ready(settings: SettingsDep) -> JSONResponse:
    """Whether the database, the broker and the object store answer (core.readiness): 200, or
    503 naming the one that does not. For load balancers and compose healthchecks."""
    checks = await run_in_threadpool(readiness.check, settings)
    ok = readiness.ready(checks)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
