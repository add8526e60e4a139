"""What a job's `error` says about a failure no step turned into one: a code and a sentence,
never an exception's text, a server path, an internal endpoint, bucket, storage key or
database URL — those go to the worker's log only, with the job's id."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlparse

from core.retry import is_transient
from core.settings import Settings

log = logging.getLogger(__name__)


class JobFailure(Exception):
    """A failure the job's `error` field reports to the user as is."""

    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.error = {"code": code, "message": message, "param": param}


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+")
_KEY = re.compile(r"\borgs/[^\s'\"]+")


def scrub(text: str, settings: Settings) -> str:
    """`text` without URLs, storage keys and the bucket's name."""
    text = _URL.sub("<internal>", text)
    text = _KEY.sub("<object>", text)
    bucket = urlparse(settings.resolved_storage_url).netloc
    if bucket:
        text = re.sub(rf"\b{re.escape(bucket)}\b", "<bucket>", text)
    return text


def _is_storage_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("botocore", "boto3", "s3transfer"))


def unexpected_error(job_id: str, exc: Exception, settings: Settings) -> dict:
    """The job's error for an exception no step turned into one."""
    from core.adapters import AdapterUnsupported

    if isinstance(exc, AdapterUnsupported):  # e.g. QLoRA without a 4-bit backend: no fallback
        return {"code": "unsupported_on_worker", "message": str(exc), "param": "adapter.type"}
    log.error("job %s failed", job_id, exc_info=exc)
    budget = f"{settings.jobs.retry_budget_s:.0f} s"
    if _is_storage_error(exc) and is_transient(exc):
        return {
            "code": "storage_unavailable",
            "message": f"Object storage stayed unreachable for more than {budget}",
            "param": None,
        }
    if _is_storage_error(exc):
        return {
            "code": "storage_error",
            "message": f"Object storage refused an operation ({type(exc).__name__})",
            "param": None,
        }
    if is_transient(exc):
        return {
            "code": "database_unavailable",
            "message": f"The database stayed unreachable for more than {budget}",
            "param": None,
        }
    return {  # the exception's text and paths stay in the log (above), under the job's id
        "code": "internal_error",
        "message": f"The job stopped on an internal error; the operator's logs hold the "
        f"details under job {job_id}.",
        "param": None,
    }
