"""413 for oversized request bodies: uploads to `POST /v1/files` over `max_upload_bytes` before
they are spooled to disk, parts of an Upload over `max_upload_part_bytes`, and every other
body over `max_json_bytes` before it is parsed.

The multipart body is parsed (and the file spooled to disk) before a route runs, so a check
in the route comes too late: a 50 GB upload would fill the disk first. This ASGI middleware
refuses a declared `Content-Length` over the limit without reading a byte of the body, and
counts the bytes of a chunked (or mis-declared) body as they arrive, stopping at the limit.
core.files still checks the file's exact size; this bound adds MULTIPART_SLACK for the
multipart framing (boundaries, part headers, the `purpose` field).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import envelope
from core.errors import PayloadTooLarge

UPLOAD_PATH = "/v1/files"
PART_PATH = re.compile(r"^/v1/uploads/[^/]+/parts/?$")
"""A part of an Upload (core.uploads): bounded by `max_upload_part_bytes`, field `data`."""
MULTIPART_SLACK = 64 * 1024


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_upload_bytes: int,
        max_json_bytes: int,
        max_part_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_json_bytes = max_json_bytes
        self.max_part_bytes = max_part_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        post, path = scope["method"] == "POST", scope["path"]
        if post and path.rstrip("/") == UPLOAD_PATH:
            max_bytes, limit, param = (
                self.max_upload_bytes,
                self.max_upload_bytes + MULTIPART_SLACK,
                "file",
            )
        elif post and self.max_part_bytes is not None and PART_PATH.match(path):
            max_bytes, param = self.max_part_bytes, "data"
            limit = max_bytes + MULTIPART_SLACK
        else:
            max_bytes, limit, param = self.max_json_bytes, self.max_json_bytes, None
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(scope, receive, send, max_bytes, param)
            return
        received = 0
        exceeded = started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise PayloadTooLarge("request body too large", param=param)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a body cut short (a parse error): ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _too_large(scope, receive, send, max_bytes, param)


async def _too_large(
    scope: Scope, receive: Receive, send: Send, max_bytes: int, param: str | None
) -> None:
    what = {"file": "file", "data": "part"}.get(param or "", "request body")
    response = envelope(
        413,
        f"{what} exceeds the {max_bytes} byte limit",
        "invalid_request_error",
        param,
        PayloadTooLarge.code if param else "request_too_large",
    )
    response.headers["connection"] = "close"  # the rest of the body is never read
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
