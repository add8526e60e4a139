"""The vLLM backend: one vLLM OpenAI server per base model, LoRA adapters loaded at run time.

`lathe inference` starts each server from the vLLM environment (`.venv-vllm`, its pins
conflict with Lathe's) and restarts it when it dies, or reaches one already running at a
configured URL. A fine-tuned LoRA/QLoRA is fetched from storage, given to the server with
`/v1/load_lora_adapter`, and unloaded least recently used (`/v1/unload_lora_adapter`) past
LATHE_VLLM_MAX_CPU_LORAS; requests then name it as their `model` and vLLM batches mixed
adapters itself. Requests pass through in OpenAI's shape; vLLM's own 400s come back as ours.
A request that scores its prompt (echo + logprobs) runs alone on its server, one prompt at a
time: vLLM's CPU engine dies scoring a prompt in a batch with anything else (scoring_gate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from core.errors import InvalidRequest
from core.inference.backends.scoring_gate import ScoringGate
from core.inference.errors import BackendError
from core.inference.pool import ModelPool, adapter_name
from core.model_store import StoredModel
from core.process import die_with_parent
from core.registry import base_model_path
from core.settings import Settings

log = logging.getLogger("lathe.inference.vllm")


def vllm_can_serve(config: dict) -> bool:
    """A causal LM whose head_dim vLLM's CPU attention takes (≥ 32; 16 is refused)."""
    archs = config.get("architectures") or []
    if not any(a.endswith("ForCausalLM") for a in archs):
        return False
    heads = config.get("num_attention_heads") or 1
    head_dim = config.get("head_dim") or config.get("hidden_size", 0) // heads
    return head_dim >= 32


class VLLMServer:
    """One server for one base model: its URL, process (when Lathe runs it) and adapters."""

    def __init__(self, base: str, url: str, settings: Settings):
        self.base, self.url, self.settings = base, url.rstrip("/"), settings
        self.ready = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.adapters: OrderedDict[str, None] = OrderedDict()
        self.lock = asyncio.Lock()
        self.gate = ScoringGate()
        self.restarts = 0
        self.context: int | None = None  # its max_model_len, once asked (VLLMBackend)

    def command(self, model_dir: Path, port: int) -> list[str]:
        s = self.settings
        config = json.loads((model_dir / "config.json").read_text())
        max_len = s.vllm.max_model_len or min(config.get("max_position_embeddings", 4096), 4096)
        return [
            str(s.vllm.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            self.base,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--enable-lora",
            "--max-lora-rank",
            str(s.vllm.max_lora_rank),
            "--max-loras",
            str(s.vllm.max_loras),
            "--max-cpu-loras",
            str(s.vllm.max_cpu_loras),
            "--max-model-len",
            str(max_len),
            "--dtype",
            "float32",
            "--enforce-eager",
        ]

    def supervise(self, model_dir: Path, port: int, log_path: Path) -> None:
        """Run the server, restarting it whenever it exits (a thread of `lathe inference`)."""
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": str(self.settings.vllm.kv_cache_gib),
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        }
        while True:
            with open(log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    self.command(model_dir, port),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent(),
                )
                self._wait_up()
                code = self.proc.wait()
            self.ready.clear()
            self.adapters.clear()  # a new server starts with none
            self.restarts += 1
            log.warning("vLLM for %s exited (%s); restarting", self.base, code)
            time.sleep(min(30, 2**self.restarts))

    def _wait_up(self) -> None:
        deadline = time.monotonic() + self.settings.vllm.start_timeout_s
        while time.monotonic() < deadline and self.proc and self.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self.ready.set()
                    log.info("vLLM for %s is up at %s", self.base, self.url)
                    return
            time.sleep(1)
        if self.proc and self.proc.poll() is None:
            log.error("vLLM for %s not up after %ss", self.base, self.settings.vllm.start_timeout_s)
            self.proc.terminate()

    def watch(self) -> None:
        """A server Lathe does not run: poll its health, forgetting adapters after a restart."""
        while True:
            try:
                up = httpx.get(f"{self.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                up = False
            if up and not self.ready.is_set():
                self.adapters.clear()
                self.context = None  # it may have been restarted with other arguments
                self.ready.set()
            elif not up:
                self.ready.clear()
            time.sleep(2)


class VLLMBackend:
    name = "vllm"

    def __init__(self, settings: Settings, pool: ModelPool):
        self.settings, self.pool = settings, pool
        self.servers: dict[str, VLLMServer] = {}
        self.client = httpx.AsyncClient(  # pooled: as many streams as the engine queues
            timeout=httpx.Timeout(settings.inference.timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
        )
        self.pinned = set(settings.inference.pinned_models)
        self._fits: OrderedDict[tuple[str, str], bool] = OrderedDict()  # model, artifact → fits

    def start(self) -> None:
        """Start (or watch) a server per base model vLLM serves; they come up in the background."""
        logs = self.settings.data_dir.resolve() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for base, url in self.settings.vllm.urls.items():
            self.servers[base] = server = VLLMServer(base, url, self.settings)
            threading.Thread(target=server.watch, daemon=True).start()
        if not self.settings.vllm.enabled:
            return
        for base in self.settings.vllm.base_models or list(self.settings.base_models):
            if base in self.servers:
                continue
            model_dir = base_model_path(self.settings, base)
            if not vllm_can_serve(json.loads((model_dir / "config.json").read_text())):
                log.info("vLLM does not serve %s (not a causal LM with head_dim >= 32)", base)
                continue
            port = free_port()
            server = VLLMServer(base, f"http://127.0.0.1:{port}", self.settings)
            self.servers[base] = server
            args = (model_dir, port, logs / f"vllm-{base}.log")
            threading.Thread(target=server.supervise, args=args, daemon=True).start()

    def stop(self) -> None:
        for server in self.servers.values():
            if server.proc and server.proc.poll() is None:
                server.proc.terminate()

    def serves(self, model: StoredModel) -> bool:
        server = self.servers.get(model.base_model)
        if server is None or not server.ready.is_set():
            return False
        return model.artifact_key is None or self._fits_vllm(model)

    def _fits_vllm(self, model: StoredModel) -> bool:
        """A LoRA on the shared base within vLLM's max rank: decided once per artifact (they
        never change), since deciding reads its files — on the request path otherwise."""
        key = (model.id, model.artifact_key or "")
        if key not in self._fits:
            fits = self.pool.shares_base(model)
            self._fits[key] = fits and self._rank(model) <= self.settings.vllm.max_lora_rank
            if len(self._fits) > 4096:
                self._fits.popitem(last=False)
        return self._fits[key]

    def _rank(self, model: StoredModel) -> int:
        config = self.pool.store.artifact_dir(model) / "adapter_config.json"
        return int(json.loads(config.read_text()).get("r", 0))

    def status(self) -> dict:
        return {
            base: {
                "url": s.url,
                "ready": s.ready.is_set(),
                "adapters": list(s.adapters),
                "restarts": s.restarts,
            }
            for base, s in self.servers.items()
        }

    async def context_length(self, base: str) -> int:
        """The context (max_model_len) of `base`'s server, as the server reports it: a
        server Lathe does not start may have any."""
        server = self.servers[base]
        if server.context is None:
            try:
                r = await self.client.get(f"{server.url}/v1/models")
            except httpx.HTTPError as exc:
                raise BackendError(f"vLLM for {base} failed: {exc}") from exc
            _raise_for(r)
            server.context = int(r.json()["data"][0]["max_model_len"])
        return server.context

    async def chat(self, model: StoredModel, body: dict) -> Any:
        return await self._forward(model, body, "/v1/chat/completions")

    async def completion(self, model: StoredModel, body: dict) -> Any:
        if not _scores_prompt(body):
            return await self._forward(model, body, "/v1/completions")
        async with self.servers[model.base_model].gate.alone():
            return await self._score(model, body)

    async def _score(self, model: StoredModel, body: dict) -> Any:
        """Prompt scoring, alone on the server (scoring_gate) and one prompt at a time: the
        prompts of one request would share a batch just as separate requests would. Never
        streamed (the completions wire refuses `stream` with echo and logprobs)."""
        prompts = _each_prompt(body)
        if len(prompts) == 1:
            return await self._send(model, body, "/v1/completions")
        n = body.get("n") or 1
        answers = [
            await self._send(model, {**body, "prompt": prompt}, "/v1/completions")
            for prompt in prompts
        ]
        choices = []
        for i, answer in enumerate(answers):
            for choice in answer["choices"]:
                choices.append({**choice, "index": i * n + choice.get("index", 0)})
        return {**answers[0], "choices": choices, "usage": _total_usage(answers)}

    async def _forward(self, model: StoredModel, body: dict, path: str) -> Any:
        """An ordinary request: side by side with the server's others (not with a scoring)."""
        gate = self.servers[model.base_model].gate
        if body.get("stream"):
            return self._shared_stream(gate, model, body, path)
        async with gate.shared():
            return await self._send(model, body, path)

    async def _shared_stream(
        self, gate: ScoringGate, model: StoredModel, body: dict, path: str
    ) -> AsyncIterator[dict]:
        async with gate.shared():  # held until the stream ends or its reader goes
            async for chunk in await self._send(model, body, path):
                yield chunk

    async def _send(self, model: StoredModel, body: dict, path: str) -> Any:
        server = self.servers[model.base_model]
        name = await self._ensure(server, model)
        payload = {**body, "model": name}
        if body.get("stream"):
            return self._stream(server, path, payload, body["model"])
        try:
            r = await self.client.post(server.url + path, json=payload)
        except httpx.HTTPError as exc:
            raise BackendError(f"vLLM for {model.base_model} failed: {exc}") from exc
        _raise_for(r)
        return {**r.json(), "model": body["model"]}

    async def _stream(
        self, server: VLLMServer, path: str, payload: dict, model: str
    ) -> AsyncIterator[dict]:
        async with self.client.stream("POST", server.url + path, json=payload) as r:
            if r.status_code != 200:
                await r.aread()
                _raise_for(r)
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise BackendError(str(chunk["error"].get("message", chunk["error"])))
                yield {**chunk, "model": model}

    async def _ensure(self, server: VLLMServer, model: StoredModel) -> str:
        """The name vLLM knows the model by, loading its adapter first if need be."""
        if model.artifact_key is None:
            return server.base
        name = adapter_name(model)
        async with server.lock:
            if name in server.adapters:
                server.adapters.move_to_end(name)
                return name
            directory = await asyncio.to_thread(self._lora_dir, model, name)
            r = await self.client.post(
                f"{server.url}/v1/load_lora_adapter",
                json={"lora_name": name, "lora_path": str(directory)},
            )
            if r.status_code != 200 and "already been loaded" not in r.text:
                raise BackendError(f"vLLM could not load {model.id}: {r.text[:500]}")
            server.adapters[name] = None
            await self._evict(server, keep=name)
        return name

    async def forget(self, model: StoredModel) -> None:
        """A deleted model: unload its adapter from its server, if loaded."""
        server, name = self.servers.get(model.base_model), adapter_name(model)
        if server is None or name not in server.adapters:
            return
        async with server.lock:
            await self.client.post(f"{server.url}/v1/unload_lora_adapter", json={"lora_name": name})
            server.adapters.pop(name, None)

    def _lora_dir(self, model: StoredModel, name: str) -> Path:
        """Only the adapter's own files: vLLM must not pick up the artifact's tokenizer."""
        source = self.pool.store.artifact_dir(model)
        dest = self.settings.data_dir.resolve() / "vllm_loras" / name
        if not (dest / "adapter_model.safetensors").exists():
            dest.mkdir(parents=True, exist_ok=True)
            for f in ("adapter_config.json", "adapter_model.safetensors"):
                shutil.copyfile(source / f, dest / f)
        return dest

    async def _evict(self, server: VLLMServer, keep: str) -> None:
        pinned = {adapter_name(StoredModel(m, "")) for m in self.pinned}
        for name in list(server.adapters):
            if len(server.adapters) <= self.settings.vllm.max_cpu_loras:
                return
            if name == keep or name in pinned:
                continue
            await self.client.post(f"{server.url}/v1/unload_lora_adapter", json={"lora_name": name})
            del server.adapters[name]
            log.info("unloaded %s from vLLM for %s", name, server.base)


def _each_prompt(body: dict) -> list[Any]:
    """The request's prompts one by one: a string or token list is one prompt."""
    prompts = body.get("prompt")
    if isinstance(prompts, list) and prompts and not isinstance(prompts[0], int):
        return prompts
    return [prompts]


def _total_usage(answers: list[dict]) -> dict:
    return {
        key: sum((a.get("usage") or {}).get(key, 0) for a in answers)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    }


def _scores_prompt(body: dict) -> bool:
    """Whether vLLM computes prompt logprobs for it (completions' echo + logprobs, or its
    own `prompt_logprobs`, which Tinker's sampling asks for: core.tinker.vllm_sampling)."""
    echoed = bool(body.get("echo")) and body.get("logprobs") is not None
    return echoed or body.get("prompt_logprobs") is not None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raise_for(r: httpx.Response) -> None:
    if r.status_code < 400:
        return
    try:
        error = r.json().get("error") or r.json()
    except ValueError:
        error = {"message": r.text[:500]}
    message = error.get("message") if isinstance(error, dict) else str(error)
    if 400 <= r.status_code < 500:
        raise InvalidRequest(f"vLLM refused the request: {message}", param=error.get("param"))
    raise BackendError(f"vLLM failed: {message}")
