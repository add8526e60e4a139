"""Every error leaves as OpenAI's envelope: {"error": {message, type, param, code}}."""

from __future__ import annotations

import functools
import logging
import math
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.errors import LatheError, ServiceUnavailable

log = logging.getLogger(__name__)


OUTAGE_RETRY_AFTER_S = 5
"""What a 503 asks the client to wait: a restarting database is usually back within seconds."""


def envelope(
    status: int,
    message: str,
    type_: str,
    param: str | None,
    code: str | None,
    retry_after: float | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(exc: LatheError) -> JSONResponse:
    response = envelope(
        exc.status_code,
        exc.message,
        exc.type,
        exc.param,
        exc.code,
        getattr(exc, "retry_after", None),
    )
    response.headers.update(getattr(exc, "headers", None) or {})  # e.g. a relayed Retry-After
    return response


@functools.cache
def outage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a service Lathe depends on is unreachable: the database (or its
    pool is exhausted), the object store, the queue. They are a 503, not a bug's 500."""
    import botocore.exceptions as boto
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc as sa

    return (
        sa.OperationalError,
        sa.InterfaceError,
        sa.DisconnectionError,
        sa.TimeoutError,
        boto.ConnectionError,
        boto.HTTPClientError,
        kombu.exceptions.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    )


def outage_response(exc: BaseException) -> JSONResponse | None:
    """A 503 with Retry-After when `exc` (or what caused it) is an outage, else None."""
    seen = exc
    while seen is not None:
        if isinstance(seen, outage_errors()):
            log.warning("dependency unavailable: %s: %s", type(seen).__name__, seen)
            unavailable = ServiceUnavailable(
                "The service is temporarily unavailable (a database or storage outage); "
                "retry shortly.",
                retry_after=OUTAGE_RETRY_AFTER_S,
            )
            return error_response(unavailable)
        seen = seen.__cause__ or seen.__context__
    return None


def _param(loc: tuple) -> str | None:
    """('body', 'method', 'supervised', 'hyperparameters', 'n_epochs') → 'method.supervised...'"""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or None


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this path: Starlette's 405 names only the first
    route whose path matched (GET /v1/files/{id} would hide DELETE /v1/files/{id})."""
    path = request.url.path
    return sorted(
        {
            method.upper()
            for template, item in request.app.openapi()["paths"].items()
            if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path)
            for method in item
        }
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(LatheError)
    async def lathe_error(_: Request, exc: LatheError):
        return error_response(exc)

    async def outage(_: Request, exc: Exception):
        return outage_response(exc)

    for kind in outage_errors():
        app.add_exception_handler(kind, outage)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        param = _param(tuple(first.get("loc", ())))
        message = f"Invalid value for '{param}': {first.get('msg')}" if param else first.get("msg")
        if len(exc.errors()) > 1:
            message += f" (and {len(exc.errors()) - 1} more problems)"
        return envelope(400, message, "invalid_request_error", param, "invalid_value")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        response = envelope(exc.status_code, str(exc.detail), "invalid_request_error", None, code)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        if (unavailable := outage_response(exc)) is not None:  # e.g. wrapped by a library
            return unavailable
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(
            500,
            "The server had an error processing your request.",
            "server_error",
            None,
            "internal_error",
        )
