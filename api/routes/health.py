"""Liveness and readiness, the only routes without an API key."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import SettingsDep
from core import readiness
from core.settings import Settings

router = APIRouter(tags=["health"])

READY_TTL_S = 2.0
"""/ready is unauthenticated: its answer is reused this long, so a flood of requests costs the
database, Redis and S3 one check per interval, not one per request."""


@router.get("/health", name="health")
async def health() -> dict[str, str]:
    """Answers from the event loop, without a thread or a database connection: under a burst
    that fills both, the process still says it is alive (a database outage shows as 503s on
    the routes that need it)."""
    return {"status": "ok"}


class _Recent:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.at = -READY_TTL_S
        self.checks: dict[str, str] = {}

    async def checks_for(self, settings: Settings) -> dict[str, str]:
        async with self.lock:  # concurrent requests wait for the one check in flight
            if time.monotonic() - self.at >= READY_TTL_S:
                self.checks = await run_in_threadpool(readiness.check, settings)
                self.at = time.monotonic()
            return self.checks


_recent: dict[int, _Recent] = {}  # per event loop (tests run several apps in one process)


@router.get("/ready", name="ready", include_in_schema=False)  # operators', not clients'
async def ready(settings: SettingsDep) -> JSONResponse:
    """Whether the database, the broker and the object store answer (core.readiness): 200, or
    503 naming the one that does not. For load balancers and compose healthchecks."""
    recent = _recent.setdefault(id(asyncio.get_running_loop()), _Recent())
    checks = await recent.checks_for(settings)
    ok = readiness.ready(checks)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
