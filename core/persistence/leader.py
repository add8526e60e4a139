"""One leader per deployment for work that must not run twice at once.

The reconciler, the storage cleanup and webhook delivery run in every API process (so the
embedded default needs nothing else), but only the process holding the deployment's leader
lock acts: two replicas delivering the same webhook would send it twice. On Postgres the lock
is a session-level advisory lock held on a connection of its own, so it is released the moment
its holder dies or loses the database, and another replica takes it on its next pass. SQLite is
the embedded default: one API process per file, which always leads.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LOCK_KEY = 0x1A7E_0001
"""The advisory lock's key: one per database, hence one leader per deployment."""


class Leadership:
    """Whether this process leads; `held()` acquires the lock when it is free."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Connection | None = None
        self._mutex = threading.Lock()  # the loops ask from worker threads

    def held(self) -> bool:
        if not self._url.startswith("postgresql"):
            return True
        with self._mutex:
            try:
                if self._conn is not None:
                    self._conn.execute(text("SELECT 1"))  # still ours while the session lives
                    self._conn.commit()
                    return True
                conn = create_engine(self._url, poolclass=NullPool).connect()
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                conn.commit()
                if got.scalar():
                    log.info("this process now leads the deployment's maintenance loops")
                    self._conn = conn
                    return True
                conn.close()
                return False
            except Exception as exc:  # the database is away: nobody can be sure to lead
                log.warning("leader lock unavailable (%s)", type(exc).__name__)
                self._drop()
                return False

    def release(self) -> None:
        with self._mutex:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a dead connection is as good as closed
                self._conn.close()  # ends the session, and with it the lock
            self._conn = None
