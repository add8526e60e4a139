"""Every error leaves as OpenAI's envelope: {"error": {message, type, param, code}}."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

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


LOCATIONS = ("body", "query", "path", "header", "cookie", "form")
MAX_LISTED = 10
"""Problems a 400's message lists one by one."""


def user_path(loc: tuple, body: Any) -> str | None:
    """The field path as the user wrote it: pydantic's `loc` also names the union member,
    constraint, literal or validator it tried (`n_epochs.constrained-int`,
    `lr_scheduler.literal['linear',…]`, `grader.string_check.…`); a step is kept only where
    the user's input has that key or index (or it is the last step of a missing field)."""
    steps = list(loc)
    if steps and steps[0] in LOCATIONS:
        where, steps = steps[0], steps[1:]
        if where != "body" and steps:  # a query/path/header parameter: its name
            return str(steps[0])
    path: list[str] = []
    node = body
    for i, step in enumerate(steps):
        if _has(node, step):
            node = node[step]
        elif i == len(steps) - 1 and isinstance(step, str) and not _is_tag(step):
            pass  # a missing field: not in the input, by definition
        else:
            continue  # a schema tag, not the user's
        path.append(str(step))
    return ".".join(path) or None


def _has(node: Any, step: Any) -> bool:
    if isinstance(node, Mapping):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _is_tag(step: str) -> bool:
    """pydantic's names for a union member: `constrained-int`, `literal[...]`, `list[str]`,
    `function-after[...]`, a model's class name (`EarlyStopping`)."""
    return bool(re.fullmatch(r"[\w-]+\[.*\]|[a-z]+-[a-z-]+|[A-Z]\w*|bool|int|float|str", step))


def problems(errors: list[dict[str, Any]], body: Any) -> list[tuple[str | None, str]]:
    """One (param, message) per problem: the errors of one field's union members are one
    message ("… or 'auto'"); a field whose deeper path also failed is that deeper problem
    (`early_stopping.patience`, not "early_stopping should be an integer")."""
    grouped: dict[str | None, list[str]] = {}
    for error in errors:
        grouped.setdefault(user_path(tuple(error.get("loc", ())), body), []).append(
            str(error.get("msg"))
        )
    parents = {q.rsplit(".", n)[0] for q in grouped if q for n in range(1, q.count(".") + 1)}
    return [(param, _one_message(msgs)) for param, msgs in grouped.items() if param not in parents]


def _one_message(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    rest = [m.removeprefix("Input should be ") for m in unique[1:]]
    return ", or ".join([unique[0], *rest])


def validation_response(errors: list[dict[str, Any]], body: Any) -> JSONResponse:
    """400 naming the first problem's field; the message lists every problem once."""
    found = problems(errors, body)
    messages = [f"Invalid value for '{p}': {m}" if p else m for p, m in found[:MAX_LISTED]]
    if len(found) > MAX_LISTED:  # a body of 10,000 bad fields gets a short answer
        messages.append(f"and {len(found) - MAX_LISTED} more fields")
    return envelope(400, "; ".join(messages), "invalid_request_error", found[0][0], "invalid_value")


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
        return validation_response(list(exc.errors()), exc.body)

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
