"""Process-wide logging: plain text, or one JSON object per line (`LATHE_LOG_FORMAT=json`).

Fields bound with `bind(job_id=..., org_id=...)` ride on every line logged inside that block,
from any logger (Celery's, transformers', ours), because they live in a context variable, not
in each call: the worker binds the job it runs, so a log aggregator can filter one job's lines.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

from core.settings import Settings

_bound: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("lathe_log_fields")
# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line emitted inside the block (nested blocks merge)."""
    token = _bound.set({**_bound.get({}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def bound_fields() -> dict[str, Any]:
    return dict(_bound.get({}))


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", <bound fields>, <extra fields>, "exc_info"?}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **bound_fields(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """The usual `LEVEL:logger:message`, with the bound fields appended as `key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if fields := bound_fields():
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger, in the chosen format; every library's logger (uvicorn
    run with log_config=None, Celery without hijacking the root logger) propagates to it."""
    handler = logging.StreamHandler()
    if settings.log.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(levelname)s:%(name)s:%(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log.level)


def job_fields(database_url: str, job_id: str) -> dict[str, str]:
    """The fields a worker binds while it runs a job: the job's id and its organization's."""
    from core.persistence.db import session_scope
    from core.persistence.models import Job

    with session_scope(database_url) as session:
        job = session.get(Job, job_id)
        return {"job_id": job_id, "org_id": job.organization_id} if job else {"job_id": job_id}


def set_fields(fields: dict[str, Any]) -> None:
    """Bind `fields` until replaced, for code whose start and end are two callbacks (a Celery
    task's prerun and postrun signals) rather than one block: see bind() otherwise."""
    _bound.set(dict(fields))
