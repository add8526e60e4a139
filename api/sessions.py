"""Database sessions for requests, bounded so that the pool can never run dry.

The deadlock this prevents: a sync route's session takes a connection in the route's thread,
and keeps it while FastAPI waits for another thread to serialize the response; under a burst
every thread then waits for a connection held by a request that waits for a thread. Here at
most `api_threads` requests hold a session (or look a key up) at once, and the pool has a
connection for each of them (`Settings.resolved_db_pool`), so a thread never waits on the pool.
Requests beyond that wait on the event loop, holding nothing, for a slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from core.persistence.db import get_sessionmaker


class SessionSlots:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphore: anyio.Semaphore | None = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._semaphore is None:  # made inside the event loop that serves the requests
            self._semaphore = anyio.Semaphore(self.slots)
        async with self._semaphore:
            yield

    @contextlib.asynccontextmanager
    async def session(self, url: str) -> AsyncIterator[Session]:
        """A unit of work, as `session_scope`, whose commit and close run in a thread outside
        the thread limit (as FastAPI runs sync dependency exits): returning the connection never
        waits for a free thread."""
        async with self.hold():
            session = get_sessionmaker(url)()
            ok = False
            try:
                yield session
                ok = True
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        _finish, session, ok, limiter=anyio.CapacityLimiter(1)
                    )


def _finish(session: Session, ok: bool) -> None:
    try:
        if ok:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
