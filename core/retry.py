"""Retry with backoff across transient outages of the database or the object store.

A worker outlives a database restart or a storage blip: each operation it depends on is retried
with exponential backoff (capped) for up to a budget of seconds (`LATHE_RETRY_BUDGET_S`), then
the last error is raised. Only errors that say "the service is unreachable right now" are
retried; a bad request, a missing object or a constraint violation is raised at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from core.persistence.db import session_scope
from core.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

_S3_TRANSIENT_CODES = {
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "Throttling",
}


def is_transient(exc: BaseException) -> bool:
    """Connection-level failures of Postgres (psycopg, through SQLAlchemy) or S3 (botocore)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return False
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return error.get("Code") in _S3_TRANSIENT_CODES or status.startswith("5")
    # boto3/s3transfer wrap a failed managed upload/download in their own exception types
    if not type(exc).__module__.startswith(("boto3", "s3transfer")):
        return False
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_transient(cause)


def retry(
    fn: Callable[[], T],
    *,
    what: str,
    budget_s: float,
    first_delay_s: float = 0.25,
    max_delay_s: float = 5.0,
) -> T:
    """`fn()`, retried on transient errors for up to `budget_s` seconds."""
    deadline = time.monotonic() + budget_s
    delay = first_delay_s
    while True:
        try:
            return fn()
        except Exception as exc:
            left = deadline - time.monotonic()
            if not is_transient(exc) or left <= 0:
                raise
            log.warning("%s failed (%s); retrying for up to %.0f s more", what, exc, left)
            time.sleep(min(delay, max(left, 0.01)))
            delay = min(delay * 2, max_delay_s)


def in_session(url: str, fn: Callable[[Session], T], *, what: str, budget_s: float) -> T:
    """Run `fn` in its own transaction, the whole transaction retried through an outage."""

    def attempt() -> T:
        with session_scope(url) as session:
            return fn(session)

    return retry(attempt, what=what, budget_s=budget_s)


def db_retry(settings: Settings, what: str, fn: Callable[[Session], T]) -> T:
    """`in_session` on the configured database with the worker's budget (LATHE_RETRY_BUDGET_S)."""
    url = settings.resolved_database_url
    return in_session(url, fn, what=what, budget_s=settings.jobs.retry_budget_s)
