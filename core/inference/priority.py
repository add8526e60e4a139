"""Request priority in the in-process engine: live requests before batch ones.

The inference service sets it per request from the `x-lathe-priority` header (the Batch
API's worker sends `batch`); the engine reads it when it queues the request's rows. A
context variable carries it through the request's threads (asyncio.to_thread copies it), so
no signature between the route and the scheduler changes.
"""

from __future__ import annotations

import contextvars

LIVE, BATCH = 0, 1
HEADER = "x-lathe-priority"

current: contextvars.ContextVar[int] = contextvars.ContextVar("lathe_priority", default=LIVE)


def from_header(value: str | None) -> int:
    return BATCH if value == "batch" else LIVE
