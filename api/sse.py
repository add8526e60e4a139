"""Answers from the inference service, passed on: JSON as it came, or its server-sent events
(OpenAI's `data: {json}` frames and `data: [DONE]`) streamed through byte for byte. The
`x-lathe-backend` header says which backend served the request."""

from __future__ import annotations

from fastapi.responses import JSONResponse, StreamingResponse

from core.inference.client import Relayed


def relay(answer: Relayed) -> JSONResponse | StreamingResponse:
    if answer.stream is not None:
        return StreamingResponse(
            answer.stream, media_type="text/event-stream", headers=answer.headers
        )
    return JSONResponse(answer.json, status_code=answer.status, headers=answer.headers)
