"""Every error leaves as OpenAI's envelope: {"error": {message, type, param, code}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.errors import LatheError

log = logging.getLogger(__name__)


def envelope(status: int, message: str, type_: str, param: str | None, code: str | None):
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _param(loc: tuple) -> str | None:
    """('body', 'method', 'supervised', 'hyperparameters', 'n_epochs') → 'method.supervised...'"""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(LatheError)
    async def lathe_error(_: Request, exc: LatheError):
        response = envelope(exc.status_code, exc.message, exc.type, exc.param, exc.code)
        response.headers.update(getattr(exc, "headers", None) or {})  # e.g. Retry-After
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        param = _param(tuple(first.get("loc", ())))
        message = f"Invalid value for '{param}': {first.get('msg')}" if param else first.get("msg")
        if len(exc.errors()) > 1:
            message += f" (and {len(exc.errors()) - 1} more problems)"
        return envelope(400, message, "invalid_request_error", param, "invalid_value")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return envelope(exc.status_code, str(exc.detail), "invalid_request_error", None, code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(
            500,
            "The server had an error processing your request.",
            "server_error",
            None,
            "internal_error",
        )
