"""The in-process inference engine: runs in `lathe inference` (never in the API process).

Generations are queued to one scheduler thread that batches concurrent requests (see
core.inference.scheduler); each request gets its output through a queue of its own, read with
a deadline, so a slow or failing generation fails only its request. Classifiers and reward
models score in the request's thread, one forward pass at a time.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from core.errors import InvalidRequest
from core.inference import priority
from core.inference.classifier import Classification
from core.inference.decode import Row
from core.inference.errors import BackendError, GenerationTimeout
from core.inference.grammar import GrammarCompilers
from core.inference.params import Delta, Generation, GenerationParams
from core.inference.pool import SOFT_PROMPTS, ModelPool, Unit, manifest
from core.inference.scheduler import Job, Scheduler, stop_ids
from core.inference.scoring import ScoreInput
from core.model_store import StoredModel
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage

_DOES = {
    "causal_lm": "generates text (POST /v1/chat/completions, /v1/completions)",
    "classification": "classifies text (POST /v1/classifications)",
    "reward_model": "scores text (POST /v1/rewards)",
    "encoder": "is an encoder base model: fine-tune it with method.type "
    "'classification' to classify text",
}
_WANTS = {"causal_lm": "generate text", "classification": "classify", "reward_model": "score"}


class InferenceEngine:
    def __init__(self, settings: Settings, storage: Storage):
        self.settings = settings
        self.pool = ModelPool(settings, storage)
        self.scheduler = Scheduler(
            self.pool,
            window_s=settings.inference.batch_window_ms / 1000,
            max_batch=settings.inference.max_batch,
            max_queue=settings.inference.max_queue,
            generate_one=_generate_one,
        )
        self._score_lock = threading.Lock()
        self.grammars = GrammarCompilers()  # imports xgrammar on first use

    def task(self, model: StoredModel) -> str:
        """What the model does, read from its files (so checkpoints answer too): "causal_lm",
        "classification", "reward_model", or "encoder" (a base that does not generate)."""
        if model.artifact_key is None:
            config = base_model_path(self.settings, model.base_model) / "config.json"
            archs = json.loads(config.read_text()).get("architectures") or []
            generates = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
            return "causal_lm" if generates else "encoder"
        info = manifest(self.pool.store, model)
        if info.get("task") != "seq_cls":
            return "causal_lm"
        return "reward_model" if info.get("num_labels") == 1 else "classification"

    def require_task(self, model: StoredModel, wanted: str) -> None:
        """InvalidRequest (400) naming what the model does instead, when it cannot do `wanted`."""
        task = self.task(model)
        if task != wanted:
            raise InvalidRequest(
                f"{model.id} cannot {_WANTS[wanted]}: it {_DOES[task]}",
                param="model",
                code="model_not_supported",
            )

    def tokenizer(self, model: StoredModel) -> Any:
        return self.pool.tokenizer(model)

    @property
    def score_lock(self) -> threading.Lock:
        """Held by whatever reads a whole model outside the scheduler (rewards,
        classifications, embeddings): one such forward pass at a time."""
        return self._score_lock

    def context_length(self, model: StoredModel) -> int:
        config = base_model_path(self.settings, model.base_model) / "config.json"
        return int(json.loads(config.read_text()).get("max_position_embeddings") or 2048)

    def check_params(self, model: StoredModel, params: GenerationParams) -> None:
        """Soft prompts are served by `model.generate`, one at a time: refuse what it lacks."""
        if manifest(self.pool.store, model).get("adapter_type") not in SOFT_PROMPTS:
            return
        for name in ("frequency_penalty", "presence_penalty", "logit_bias", "logprobs"):
            if getattr(params, name):
                raise InvalidRequest(
                    f"{name} is not supported for prompt/prefix-tuned models", param=name
                )
        if params.grammar:
            raise InvalidRequest(
                "response_format is not supported for prompt/prefix-tuned models",
                param="response_format",
            )
        if params.prompt_logprobs is not None or params.max_tokens == 0:
            raise InvalidRequest(
                "scoring the prompt (echo with logprobs, max_tokens 0) is not supported for "
                "prompt/prefix-tuned models",
                param="echo" if params.prompt_logprobs is not None else "max_tokens",
            )

    def stream(
        self, model: StoredModel, requests: list[tuple[list[int], GenerationParams]]
    ) -> Iterator[tuple[int, Delta | Generation]]:
        """Queue generations (they batch together) and yield (index, delta) as they come,
        each index ending with its Generation. Raises GenerationTimeout past the per-request
        deadline and BackendError when a generation fails; either cancels the rest."""
        out: queue.Queue = queue.Queue()
        rows = []
        for index, (prompt, params) in enumerate(requests):
            self.check_params(model, params)
            row = Row(prompt=prompt, params=params, emit=lambda item, i=index: out.put((i, item)))
            if params.grammar is not None:
                row.matcher = self._matcher(model, params)
            rows.append(row)
        group = f"base:{model.base_model}" if self.pool.shares_base(model) else model.id
        deadline = time.monotonic() + self.settings.inference.timeout_s
        try:
            for row in rows:
                self.scheduler.submit(Job(model, row, group, priority=priority.current.get()))
            left = len(rows)
            while left:
                try:
                    index, item = out.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise GenerationTimeout(
                        f"the generation ran past {self.settings.inference.timeout_s:g} s"
                    ) from None
                if isinstance(item, BaseException):
                    if isinstance(item, InvalidRequest):
                        raise item
                    raise BackendError(f"generation failed: {item}") from item
                left -= isinstance(item, Generation)
                yield index, item
        finally:
            for row in rows:  # a client gone or a timeout: the scheduler drops the rows
                row.cancelled.set()

    def generate(
        self, model: StoredModel, requests: list[tuple[list[int], GenerationParams]]
    ) -> list[Generation]:
        done: dict[int, Generation] = {}
        for index, item in self.stream(model, requests):
            if isinstance(item, Generation):
                done[index] = item
        return [done[i] for i in range(len(requests))]

    def _matcher(self, model: StoredModel, params: GenerationParams) -> Any:
        from core.inference.grammar import Matcher

        tok = self.tokenizer(model)
        vocab = self._vocab_size(model, tok)
        compiled = self.grammars.compile(tok, vocab, params.grammar)
        return Matcher(compiled, vocab)

    def _vocab_size(self, model: StoredModel, tok: Any) -> int:
        config = base_model_path(self.settings, model.base_model) / "config.json"
        return int(json.loads(config.read_text()).get("vocab_size") or len(tok))

    def classify(self, model: StoredModel, texts: list[str]) -> tuple[list[Classification], int]:
        """Labels and class probabilities for `texts`, and the tokens read."""
        from core.inference.classifier import classify

        lm, tok = self.pool.whole.get_or_load(model.id, lambda: self.pool.store.load(model))
        with self._score_lock:
            return classify(lm, tok, texts)

    def score(self, model: StoredModel, items: list[ScoreInput]) -> tuple[list[float], int]:
        """Reward-model scores for `items` (conversations or strings), and the tokens read."""
        from core.inference.scoring import RewardScorer

        lm, tok = self.pool.whole.get_or_load(model.id, lambda: self.pool.store.load(model))
        scorer = RewardScorer(lm, tok)
        with self._score_lock:
            return scorer.score(items), scorer.count_tokens(items)

    def stats(self) -> dict:
        return {
            **self.scheduler.stats.as_dict(),
            "queue_depth": self.scheduler.depth,
            "loaded_adapters": self.pool.loaded_adapters(),
        }


def _generate_one(unit: Unit, row: Row) -> None:
    """Soft prompts (prompt/prefix tuning) re-inject their virtual tokens on every forward
    pass, so they cannot join the shared KV-cache loop: `model.generate` serves them."""
    import torch

    tok, params = unit.tokenizer, row.params
    ids = torch.tensor([row.prompt])
    kwargs: dict[str, Any] = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=params.max_tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=sorted(stop_ids(unit)) or None,
        do_sample=params.temperature > 0,
    )
    if params.temperature > 0:
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    if params.stop:
        kwargs.update(stop_strings=params.stop, tokenizer=tok)
    with torch.inference_mode():
        if params.seed is not None:
            torch.manual_seed(params.seed)
        new = unit.model.generate(**kwargs)[0, len(row.prompt) :].tolist()
    text = tok.decode(new, skip_special_tokens=True)
    cut = min((i for s in params.stop or [] if (i := text.find(s)) >= 0), default=-1)
    stopped = cut >= 0 or any(t in stop_ids(unit) for t in new)
    text = text[:cut] if cut >= 0 else text
    row.emit(Delta(text))
    row.emit(
        Generation(
            text=text,
            finish_reason="stop" if stopped or len(new) < params.max_tokens else "length",
            prompt_tokens=len(row.prompt),
            completion_tokens=len(new),
        )
    )


def now() -> int:
    return int(time.time())
