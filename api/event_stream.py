"""`GET /v1/fine_tuning/jobs/{id}/events?stream=true`: a job's events as server-sent events.

Oldest first, each frame `id: <event id>` + `data: <the event object>`, so a client that
reconnects with `Last-Event-ID` (as browsers' EventSource do) gets only what it missed. The
stream ends with `data: [DONE]` once the job is finished (succeeded, failed or cancelled) and
every event has been sent (read again a moment later, for a worker's last words). Until then
it polls the database (short sessions, never one held open for the stream's life) and sends a
comment line now and then so idle proxies keep it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.schemas import JobEventObject
from core.errors import NotFound
from core.jobs.states import JobStatus
from core.persistence.db import session_scope
from core.persistence.models import Job, JobEvent

POLL_INTERVAL_S = 0.5  # how soon a new event reaches the browser
HEARTBEAT_S = 15.0  # a comment line this often while nothing happens
BATCH = 200  # events read per poll, so a long backlog streams in bounded memory
# A worker may add an event or two just after the job finished (e.g. before it notices a
# cancel): the stream reads once more this long after it first sees the job finished.
FINISH_GRACE_S = 1.0


def start_seq(url: str, job_id: str, last_event_id: str | None) -> int:
    """The `seq` after which to stream; an id that is not this job's event is a 404."""
    if not last_event_id:
        return 0
    with session_scope(url) as session:
        seq = session.scalar(
            select(JobEvent.seq).where(JobEvent.id == last_event_id, JobEvent.job_id == job_id)
        )
    if seq is None:
        raise NotFound(f"No such event of this job: {last_event_id}", param="Last-Event-ID")
    return seq


def _poll(url: str, job_id: str, after_seq: int) -> tuple[list[tuple[int, str]], bool]:
    """Frames of the events after `after_seq`, and whether the job had finished before they
    were read (so nothing the job writes before finishing can be missed)."""
    with session_scope(url) as session:
        status = session.scalar(select(Job.status).where(Job.id == job_id))
        rows = session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.seq > after_seq)
            .order_by(JobEvent.seq)
            .limit(BATCH)
        )
        frames = [(r.seq, _frame(JobEventObject.from_row(r))) for r in rows]
    finished = status is None or JobStatus(status).terminal
    return frames, finished and len(frames) < BATCH


def _frame(event: JobEventObject) -> str:
    return f"id: {event.id}\ndata: {json.dumps(event.model_dump(mode='json'))}\n\n"


async def _frames(url: str, job_id: str, after_seq: int) -> AsyncIterator[str]:
    """Async, so a client that goes away cancels it at the next sleep, not a thread later."""
    quiet, finished_at = 0.0, None
    while True:
        frames, finished = await run_in_threadpool(_poll, url, job_id, after_seq)
        for seq, text in frames:
            yield text
            after_seq = seq  # a reconnect-free resume point once this frame is out
        if finished:
            now = asyncio.get_running_loop().time()
            finished_at = now if finished_at is None else finished_at
            if now - finished_at >= FINISH_GRACE_S:
                yield "data: [DONE]\n\n"
                return
        quiet = 0.0 if frames else quiet + POLL_INTERVAL_S
        if quiet >= HEARTBEAT_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        if len(frames) < BATCH:  # a full batch means more are waiting: read on at once
            await asyncio.sleep(POLL_INTERVAL_S)


def event_stream(url: str, job_id: str, last_event_id: str | None) -> StreamingResponse:
    after_seq = start_seq(url, job_id, last_event_id)  # a bad id fails before the stream starts
    return StreamingResponse(
        _frames(url, job_id, after_seq),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
