"""The inference service's routing: which backend serves a request, and the one place that
says so in the logs. LoRA/QLoRA adapters (and base models) on a base with a ready vLLM server
go to vLLM; everything else, and everything while vLLM is still starting, to the in-process
engine. Chat requests with tools also run in-process: Lathe's own parser turns the model's
tool calls into `message.tool_calls` there (a vLLM server parses them only when started with a
tool parser for that model's template), so `tools`, `tool_choice` and `parallel_tool_calls`
mean the same on every base. Rewards and classifications always run in-process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.inference.backends.base import Backend
from core.inference.backends.local import LocalBackend
from core.inference.backends.vllm import VLLMBackend
from core.inference.engine import InferenceEngine
from core.inference.errors import BackendError
from core.model_store import StoredModel
from core.settings import Settings
from core.storage import get_storage

log = logging.getLogger("lathe.inference")


class InferenceService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = InferenceEngine(settings, get_storage(settings))
        self.local = LocalBackend(self.engine)
        self.vllm = VLLMBackend(settings, self.engine.pool)

    def start(self) -> None:
        # Import the torch stack once, before requests arrive: transformers' lazy imports are
        # not safe when several request threads trigger them at the same time.
        import peft  # noqa: F401
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

        torch.set_num_threads(self.settings.inference.torch_threads)
        self.vllm.start()

    def stop(self) -> None:
        self.vllm.stop()

    def backend(self, model: StoredModel, body: dict | None = None) -> Backend:
        uses_tools = bool((body or {}).get("tools"))
        if self.vllm.servers and not uses_tools and self.vllm.serves(model):
            return self.vllm
        return self.local

    async def handle(self, op: str, model: StoredModel, body: dict) -> tuple[str, Any]:
        """(backend name, answer) for a "chat" or "completion" request."""
        try:
            backend = await asyncio.to_thread(self.backend, model, body)  # may fetch files
            log.info("%s %s → %s", op, model.id, backend.name)
            call = backend.chat if op == "chat" else backend.completion
            return backend.name, await call(model, body)
        except (FileNotFoundError, OSError) as exc:  # its stored files are gone or unreadable
            raise BackendError(f"{model.id} cannot be loaded: {exc}") from exc

    async def forget(self, model: StoredModel) -> None:
        self.engine.pool.forget(model)
        await self.vllm.forget(model)

    def stats(self) -> dict:
        return {"in_process": self.engine.stats(), "vllm": self.vllm.status()}
