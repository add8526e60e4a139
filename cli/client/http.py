"""The client commands' one way to talk to the server: the public `/v1` API over httpx.

Errors come back as OpenAI's envelope; they become `ApiError` carrying its message and
`param`, which the commands print as one line (and a non-zero exit), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from cli.client.config import Target


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.param = param

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (param: {self.param})" if self.param else text


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    response.read()
    try:
        error = response.json()["error"]
        raise ApiError(error["message"], response.status_code, error.get("param"))
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            f"HTTP {response.status_code}: {response.text[:500]}", response.status_code
        ) from None


class ApiClient:
    """A bearer-authenticated httpx client rooted at `<base_url>/v1`."""

    def __init__(self, target: Target, timeout: float = 60.0):
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        self.target = target
        self.http = httpx.Client(
            base_url=f"{target.base_url}/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach {self.target.base_url}: {exc}") from exc
        _raise_for(response)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body)

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (downloads, SSE); errors raised first."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                _raise_for(response)
                yield response
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach {self.target.base_url}: {exc}") from exc

    def close(self) -> None:
        self.http.close()


@dataclass
class SseEvent:
    data: str
    id: str | None = None
    event: str | None = None


def sse_events(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Server-sent events from a text/event-stream body, by the WHATWG rules: `field: value`
    lines, `data` lines joined by newlines, a blank line ends an event, `:` lines are comments."""
    data: list[str] = []
    event_id: str | None = None
    name: str | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent("\n".join(data), event_id, name)
            data, event_id, name = [], None, None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
        elif field == "event":
            name = value
    if data:
        yield SseEvent("\n".join(data), event_id, name)
