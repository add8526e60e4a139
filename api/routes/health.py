"""Liveness, the only route without an API key."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health", name="health")
async def health() -> dict[str, str]:
    """Answers from the event loop, without a thread or a database connection: under a burst
    that fills both, the process still says it is alive (a database outage shows as 503s on
    the routes that need it)."""
    return {"status": "ok"}
