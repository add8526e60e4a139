"""Judges for score_model/label_model graders: chat completions through the inference
service (core.inference.client), the path every served model answers through.

    InferenceJudge(resolve, call)   resolve(model) → its Model row (the caller's access rules);
                                    call(row, body) → the service's answer (core.inference.client)
    ServiceCaller(settings)         `call` for synchronous code without an event loop (a
                                    training process): an InferenceClient on a loop of its own

The API passes a `call` that runs the app's own client on the app's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from core.errors import LatheError
from core.graders.base import JudgeUnavailable

Call = Callable[[Any, dict[str, Any]], Any]


class InferenceJudge:
    def __init__(self, resolve: Callable[[str], Any], call: Call):
        self.resolve = resolve
        self.call = call
        self._rows: dict[str, Any] = {}

    def chat(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            if model not in self._rows:
                self._rows[model] = self.resolve(model)
            relayed = self.call(self._rows[model], body)
        except LatheError as exc:  # not found, overloaded, the service's own error answers
            raise JudgeUnavailable(f"the judge {model} could not answer: {exc}") from None
        except TimeoutError:
            raise JudgeUnavailable(f"the judge {model} did not answer in time") from None
        if not isinstance(relayed.json, dict):
            raise JudgeUnavailable(f"the judge {model} gave no answer")
        return relayed.json


class ServiceCaller:
    """Calls the inference service from synchronous code: one InferenceClient, on an event
    loop in a daemon thread of its own, made on first use."""

    def __init__(self, settings: Any):
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._lock = threading.Lock()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                from core.inference.client import InferenceClient

                if not self.settings.inference.url:
                    raise JudgeUnavailable(
                        "no inference service is configured (LATHE_INFERENCE_URL)"
                    )
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="judge-loop", daemon=True).start()

                async def make() -> Any:
                    return InferenceClient(self.settings)

                self._client = asyncio.run_coroutine_threadsafe(make(), loop).result()
                self._loop = loop
            return self._loop

    def __call__(self, row: Any, body: dict[str, Any]) -> Any:
        loop = self._start()
        future = asyncio.run_coroutine_threadsafe(
            self._client.call("chat/completions", row, body), loop
        )
        try:
            return future.result(timeout=self.settings.graders.judge_timeout_s)
        except TimeoutError:
            future.cancel()
            raise
