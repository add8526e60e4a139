"""Postgres NOTIFY wakeups between the Tinker API and its trainers, so that neither side polls
on the hot path of a request.

Two channels: the API announces a new request on NEW_CHANNEL (the trainers LISTEN and wake
up), and a trainer announces a written result on DONE_CHANNEL with the request id as payload
(each API process LISTENs on one shared connection, `DoneListener`, and wakes the
`retrieve_future` long-polls waiting for that id). A NOTIFY sent inside the transaction that
writes a row is delivered at its commit, so a woken reader always finds the row it was told
about. The rows stay the source of truth: a notification only says "look again now", and the
waiters still re-read the row now and then (RECHECK_S) in case one was lost.

SQLite (the embedded default) has no NOTIFY: there `enabled` is false and both sides poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger("lathe.tinker")

NEW_CHANNEL = "lathe_tinker"
"""A request was inserted: wakes the trainers (core.tinker.trainer)."""
DONE_CHANNEL = "lathe_tinker_done"
"""A request's result (or error) was written; the payload is its id."""
RECHECK_S = 2.0
"""A waiter re-reads its row this often even without a notification: a NOTIFY lost to a
dropped connection costs at most this long, and an orphaned request (core.tinker.service.
fail_if_orphaned) is still noticed."""
RECONNECT_S = (0.5, 30.0)
"""Backoff of the listener's reconnection attempts (first, most)."""


def enabled(url: str) -> bool:
    return url.startswith("postgresql")


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def notify(db: Session, channel: str, payload: str = "") -> None:
    """NOTIFY `channel` when `db`'s transaction commits (nothing on SQLite)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )


def listen(url: str, channel: str) -> Any:
    """A blocking psycopg connection LISTENing on `channel` (the trainer's), or None where
    the database has no NOTIFY."""
    if not enabled(url):
        return None
    import psycopg

    conn = psycopg.connect(libpq_url(url), autocommit=True)
    conn.execute(f"LISTEN {channel}")
    return conn


class DoneListener:
    """One LISTEN connection on DONE_CHANNEL per API process, fanning each notification out
    to the asyncio tasks watching that request id.

    Why one shared connection: a connection per long-poll would hold one Postgres backend per
    waiting future (an RL loop keeps hundreds of sample futures open). The connection is
    opened on first use and reopened with backoff if it drops; while it is down `listening`
    is false and the waiters fall back to polling.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.listening = False
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None

    async def start(self) -> bool:
        """Starts the reader task on first call; true once LISTEN is in place. Only the
        first caller waits for the connection (briefly): later ones poll until it is up."""
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="tinker-done-listener")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 5.0)
        return self.listening

    @contextlib.contextmanager
    def watch(self, request_id: str) -> Iterator[asyncio.Event]:
        """An event set when `request_id` is announced done. Register before reading the row:
        a notification that lands between the read and the wait is then not missed."""
        event = asyncio.Event()
        self._waiters.setdefault(request_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiters.get(request_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[request_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.listening = False

    async def _run(self) -> None:
        import psycopg

        backoff = RECONNECT_S[0]
        while True:
            started = time.monotonic()
            try:
                async with await psycopg.AsyncConnection.connect(
                    libpq_url(self.url), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {DONE_CHANNEL}")
                    self.listening = True
                    if self._ready is not None:
                        self._ready.set()
                    async for note in conn.notifies():
                        self._wake(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("tinker result listener down (%s); waiters poll meanwhile", exc)
            self.listening = False
            if self._ready is not None:
                self._ready.set()  # the first attempt is over either way: start() returns
            self._wake_all()  # whatever was announced while down: re-read now
            if time.monotonic() - started > RECONNECT_S[1]:
                backoff = RECONNECT_S[0]  # it had been up a while: a new incident
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_S[1])

    def _wake(self, request_id: str) -> None:
        for event in self._waiters.get(request_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()
