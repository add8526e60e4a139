"""The public API's side of the inference service: httpx calls to `lathe inference`, with
timeouts, answers relayed as they come (JSON, or SSE streamed through untouched).

An error answer from the service keeps its status and envelope (and Retry-After); a service
that cannot be reached is a 503 with Retry-After, never a hang.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from core.errors import LatheError, ServiceUnavailable
from core.inference.errors import Starting
from core.model_store import StoredModel
from core.persistence.models import Model
from core.settings import Settings


@dataclass
class Relayed:
    """An answer to pass on: a JSON body or an SSE byte stream, its status and headers."""

    status: int
    headers: dict[str, str]
    json: dict | None = None
    stream: AsyncIterator[bytes] | None = None


class ServiceError(LatheError):
    """An error envelope from the inference service, relayed as it came."""

    def __init__(self, status: int, error: dict, headers: dict[str, str]):
        super().__init__(error.get("message") or "inference failed", param=error.get("param"))
        self.status_code = status
        self.type = error.get("type") or "server_error"
        self.code = error.get("code")
        self.headers = headers


START_GRACE_S = 900.0
"""How long after this client is made a refused connection still reads as "starting": the
inference service's own start (vLLM's included, LATHE_VLLM_START_TIMEOUT_S 600) fits in it.
Past it, a service never reached is unavailable, not starting (a wrong LATHE_INFERENCE_URL)."""


class InferenceClient:
    def __init__(self, settings: Settings):
        self.url = (settings.inference.url or "").rstrip("/")
        self.created = time.monotonic()
        self.reached = False
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.inference.timeout_s + 30, connect=5.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
        )

    @staticmethod
    def target(row: Model) -> dict:
        stored = StoredModel.of(row)
        return {
            "id": stored.id,
            "base_model": stored.base_model,
            "artifact_key": stored.artifact_key,
        }

    async def call(self, path: str, row: Model, body: dict, batch: bool = False) -> Relayed:
        """POST to the service; raises ServiceError for its error answers. `batch`: a Batch
        API request, which the engine serves after live ones (core.inference.priority)."""
        payload = {"model": self.target(row), "body": body}
        headers = {"x-lathe-priority": "batch"} if batch else None
        request = self.http.build_request(
            "POST", f"{self.url}/internal/{path}", json=payload, headers=headers
        )
        try:
            response = await self.http.send(request, stream=bool(body.get("stream")))
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        self.reached = True
        headers = {
            k: v for k, v in response.headers.items() if k in ("x-lathe-backend", "retry-after")
        }
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"message": response.text[:500]}
            raise ServiceError(response.status_code, error, headers)
        if body.get("stream"):
            return Relayed(response.status_code, headers, stream=_bytes(response))
        return Relayed(response.status_code, headers, json=response.json())

    def unreachable(self, exc: httpx.HTTPError) -> LatheError:
        """A refused connection before the service ever answered is its start (say so, with
        Retry-After); anything else is an outage. Neither is an overload."""
        never = not self.reached and time.monotonic() - self.created < START_GRACE_S
        if never and isinstance(exc, httpx.ConnectError):
            return Starting("the inference service is starting; retry in a few seconds")
        return ServiceUnavailable(f"the inference service is unavailable ({type(exc).__name__})")

    def forget(self, row: Model) -> None:
        """Tell the service a model was deleted (best effort: a service that is down has
        nothing of it loaded, and its LRU would drop it anyway)."""
        payload = {"model": self.target(row), "body": {}}
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{self.url}/internal/forget", json=payload, timeout=10)

    async def aclose(self) -> None:
        await self.http.aclose()


async def _bytes(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    finally:
        await response.aclose()
