"""Errors a client can cause, carrying what the OpenAI error envelope needs.

`core` raises these; `api/errors.py` turns them into `{"error": {message, type, param, code}}`
with the status below. Anything else reaching the client is a bug (500).
"""

from __future__ import annotations


class LatheError(Exception):
    status_code = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(LatheError):
    code = "invalid_request"


class NotFound(LatheError):
    status_code = 404
    code = "not_found"


class Conflict(LatheError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(LatheError):
    status_code = 413
    code = "file_too_large"


class Unauthorized(LatheError):
    status_code = 401
    code = "invalid_api_key"


class TooManyRequests(LatheError):
    """A rate limit or quota: the client may try again after `retry_after` seconds."""

    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(LatheError):
    """A dependency (database, object store, queue) is down; nothing the client did."""

    status_code = 503
    type = "server_error"
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: float = 5, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
