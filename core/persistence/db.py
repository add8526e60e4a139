"""Engine and session factory, one per database URL per process.

The pool is sized from the API's thread count (`Settings.resolved_db_pool`): the API lets at
most that many requests hold a session at once (`api.sessions`), so the pool has a connection
for each and no request thread waits on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from core.settings import get_settings


@lru_cache
def get_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # WAL: API and worker write together
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    settings = get_settings()
    size, overflow = settings.resolved_db_pool
    return create_engine(
        url,
        pool_pre_ping=True,  # a connection dropped by a database restart is replaced, not used
        pool_size=size,
        max_overflow=overflow,
        pool_timeout=settings.database.pool_timeout_s,
        # an unreachable host fails within the same bound (a 503), not after TCP's minutes
        connect_args={"connect_timeout": max(1, round(settings.database.pool_timeout_s))}
        if url.startswith("postgresql")
        else {},
    )


@lru_cache
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
