"""`GET /metrics` in Prometheus' text format: HTTP latency and status by route template,
inference tokens (from the `usage` of chat and text completions), and jobs by status and queue
depth, counted in the database at scrape time.

Each app gets its own registry (tests build several apps in one process). The middleware is
pure ASGI: it sees the status line and the end of the body, so a streamed response (a zip, an
SSE stream) is timed to its last byte, and no body is buffered. Requests that match no route
are labelled `unmatched`, so probing random paths cannot grow the label set without bound.
The route needs no API key, like /health (it shows counts, no ids or names); the operator may
move it to a listen address of its own or require a token (api.metrics_access).
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics_access import serve_apart, token_ok
from core.drift.metrics import DriftCollector
from core.errors import NotFound, Unauthorized
from core.observability import JobsCollector
from core.settings import Settings

router = APIRouter(tags=["health"])
INFERENCE_ROUTES = frozenset({"/v1/chat/completions", "/v1/completions"})
_TAIL = 256 * 1024  # bytes of a response kept to find its usage (SSE: the last chunks)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry):
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "lathe_http_requests_total", "HTTP requests answered.", labels, registry=registry
        )
        self.latency = Histogram(
            "lathe_http_request_duration_seconds",
            "From the request to the last byte of the response.",
            labels,
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )

        self.tokens = Counter(
            "lathe_inference_tokens_total",
            "Tokens of answered inference requests, by kind (prompt, completion); streamed "
            "ones count when the client asked for usage (stream_options.include_usage).",
            ["route", "kind"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def count_usage(self, route: str, tail: bytes) -> None:
        if usage := _usage(tail):
            for kind in ("prompt", "completion"):
                self.tokens.labels(route, kind).inc(int(usage.get(f"{kind}_tokens") or 0))


def _usage(tail: bytes) -> dict | None:
    """`usage` of a JSON body, or of the last SSE `data:` chunk that has one."""
    text = tail.decode("utf-8", errors="replace").strip()
    candidates = [text] if text.startswith("{") else []
    candidates += [line[5:].strip() for line in reversed(text.splitlines()) if '"usage"' in line
                   and line.startswith("data:")]  # fmt: skip
    for candidate in candidates:
        try:
            usage = json.loads(candidate).get("usage")
        except (ValueError, AttributeError):
            continue
        if isinstance(usage, dict):
            return usage
    return None


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        tail: bytearray | None = None  # an inference response's last bytes, for its usage

        async def send_status(message: Message) -> None:
            nonlocal status, tail
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 200 and _route(scope) in INFERENCE_ROUTES:
                    tail = bytearray()
            elif message["type"] == "http.response.body" and tail is not None:
                tail.extend(message.get("body", b""))
                del tail[:-_TAIL]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route(scope)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - start)
            if tail:
                self.metrics.count_usage(route, bytes(tail))


def _route(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", None) or "unmatched"


@router.get("/metrics", name="metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """A sync route: the jobs collector queries the database. Served elsewhere or guarded by
    a token as the operator chose (api.metrics_access)."""
    settings: Settings = request.app.state.metrics_settings
    if settings.metrics.listen:
        raise NotFound(f"metrics are served on {settings.metrics.listen}, not here")
    if not token_ok(request.headers.get("authorization"), settings.metrics.token):
        raise Unauthorized("/metrics needs Authorization: Bearer <LATHE_METRICS_TOKEN>")
    body = generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, settings: Settings) -> None:
    """The route, the middleware and this app's registry."""
    registry = CollectorRegistry()
    registry.register(JobsCollector(settings.resolved_database_url))
    registry.register(DriftCollector())
    app.state.metrics_registry = registry
    app.state.metrics_settings = settings
    if settings.metrics.listen:
        serve_apart(settings, registry)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.include_router(router)
