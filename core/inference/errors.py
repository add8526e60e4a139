"""Errors of the inference service that a client can meet, beyond core.errors' 4xx."""

from __future__ import annotations

from core.errors import LatheError


class Overloaded(LatheError):
    """The engine's queue is full: retry after `retry_after` seconds (503 + Retry-After)."""

    status_code = 503
    type = "server_error"
    code = "engine_overloaded"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class Starting(LatheError):
    """The inference service has not answered yet since this process started: it is still
    loading (seconds in-process, minutes with vLLM). Not an overload: the client only waits."""

    status_code = 503
    type = "server_error"
    code = "inference_starting"

    def __init__(self, message: str, retry_after: int = 2):
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class GenerationTimeout(LatheError):
    """A generation ran past LATHE_INFERENCE_TIMEOUT_S; it is cancelled, the engine goes on."""

    status_code = 504
    type = "server_error"
    code = "timeout"


class BackendError(LatheError):
    """A backend failed this request (a model that will not load, a crash mid-generation)."""

    status_code = 502
    type = "server_error"
    code = "backend_error"
