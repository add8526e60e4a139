"""Server-sent events, as OpenAI streams them: one `data: {json}` frame per chunk, then
`data: [DONE]`. Shared by every streaming endpoint so the framing lives in one place."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from fastapi.responses import StreamingResponse


def sse_response(payloads: Iterable[dict]) -> StreamingResponse:
    """`payloads` should be a sync iterator: Starlette runs it in its thread pool, so blocking
    generation never stalls the event loop."""

    def frames() -> Iterator[str]:
        for payload in payloads:
            yield f"data: {json.dumps(payload)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream")
