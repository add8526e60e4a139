"""Generations decoded together, continuously: the heart of the in-process engine's batching.

A `Batch` holds the rows decoding now and their shared KV cache. Rows join between decode
steps (`admit`: their prompts are prefilled on their own, left-padded, and their caches are
left-padded into the running one, masked) and leave as soon as they finish (`retire`: their
cache rows are dropped, and columns no row still needs are trimmed), so a short request never
waits for a long one to end and a new one never waits for the batch to drain. Positions are
per row, so padding changes no row's answer. Each row keeps its own sampling fields, seed,
penalties, grammar, stop strings and token budget. With a PEFT model carrying several LoRA
adapters, `adapter_names` gives each row its adapter ("__base__": none), so requests for
different fine-tuned models of one base share every forward pass.

Joining needs a plain growing cache (transformers' `DynamicLayer` in every layer); a model
with another cache (sliding windows, state-space layers) decodes the rows it started with and
admits the next ones when they have finished (`Batch.joinable`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from core.inference.params import Delta, Generation, GenerationParams, TokenLogprob
from core.inference.prompt_scoring import prompt_logprobs
from core.inference.sampling import choose, processed

BASE_ADAPTER = "__base__"
"""PEFT's name for "no adapter" in a mixed-adapter batch."""

Emit = Callable[[Delta | Generation | BaseException], None]


@dataclass(eq=False)  # rows are compared by identity
class Row:
    """One generation: its prompt and fields, where its output goes, and its decoding state."""

    prompt: list[int]
    params: GenerationParams
    emit: Emit
    adapter: str = BASE_ADAPTER
    matcher: Any = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    text: str = ""
    sent: int = 0
    sampled: int = 0
    finish: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    pending_logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_scores: list[TokenLogprob] | None = None

    def generator(self) -> torch.Generator:
        gen = torch.Generator()
        if self.params.seed is not None:
            gen.manual_seed(self.params.seed)
        else:
            gen.seed()
        return gen


class Batch:
    """The rows decoding together on one model, their KV cache, mask and next positions."""

    def __init__(self, tokenizer: Any, stop_ids: set[int], shared_base: bool):
        self.tokenizer, self.stop_ids, self.shared_base = tokenizer, stop_ids, shared_base
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.rows: list[Row] = []
        self.generators: list[torch.Generator] = []
        self.next_ids: list[int] = []  # each row's last sampled token, fed at the next step
        self.mask: torch.Tensor | None = None  # [rows, cached length]: 0 where padding
        self.positions: torch.Tensor | None = None  # [rows]: the position of the next token
        self.cache: Any = None
        self.model: Any = None  # set by the scheduler: the model the next step runs on
        self.joinable = True

    def admit(self, model: Any, rows: list[Row]) -> None:
        """Prefill `rows`, sample their first tokens and add them to the batch. A failure
        here (raised) leaves the rows already decoding as they were."""
        width = max(len(r.prompt) for r in rows)
        ids = torch.tensor([[self.pad] * (width - len(r.prompt)) + r.prompt for r in rows])
        mask = torch.tensor([[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in rows])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [r.generator() for r in rows]
        scored = [r.params.prompt_logprobs is not None for r in rows]
        with torch.inference_mode():
            out = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=0 if any(scored) else 1,  # every position: the prompt's scores
                **self._adapters(model, rows),
            )
        for i, row in enumerate(rows):
            if scored[i]:
                own = out.logits[i, width - len(row.prompt) :]
                top = row.params.prompt_logprobs or 0
                row.prompt_scores = prompt_logprobs(self.tokenizer, own, row.prompt, top)
        logits = out.logits[:, -1, :]
        tokens = [self._first(r, logits[i], generators[i]) for i, r in enumerate(rows)]
        self._merge(rows, generators, tokens, mask, positions[:, -1] + 1, out.cache)

    def step(self, model: Any) -> None:
        """One decode step for every row: feed each its last token, sample its next one."""
        mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=self.mask.dtype)], -1)
        with torch.inference_mode():
            out = model(
                input_ids=torch.tensor(self.next_ids).unsqueeze(-1),
                attention_mask=mask,
                position_ids=self.positions.unsqueeze(-1),
                cache=self.cache,
                use_cache=True,
                logits_to_keep=1,
                **self._adapters(model, self.rows),
            )
        self.cache, self.mask = out.cache, mask
        self.positions = self.positions + 1
        logits = out.logits[:, -1, :]
        for i, row in enumerate(self.rows):
            if row.finish is None:
                self.next_ids[i] = self._sample(row, logits[i], self.generators[i])

    def retire(self) -> int:
        """Finish the rows that are done (their last text and Generation) and drop them from
        the cache; returns how many left."""
        done = [i for i, r in enumerate(self.rows) if r.finish is not None or r.cancelled.is_set()]
        if not done:
            return 0
        for i in done:
            self.rows[i].finish = self.rows[i].finish or "cancelled"
            _finish(self.rows[i], self.tokenizer)
        keep = [i for i in range(len(self.rows)) if i not in set(done)]
        self.rows = [self.rows[i] for i in keep]
        self.generators = [self.generators[i] for i in keep]
        self.next_ids = [self.next_ids[i] for i in keep]
        if not keep:
            self.mask = self.positions = self.cache = None
            return len(done)
        index = torch.tensor(keep)
        self.mask, self.positions = self.mask[index], self.positions[index]
        if not self.joinable:  # another kind of cache: it selects its own rows
            self.cache.batch_select_indices(index)
            return len(done)
        start = int(self.mask.any(0).nonzero()[0])  # left columns only padding now: trimmed
        self.mask = self.mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
        return len(done)

    def fail(self, exc: BaseException) -> None:
        """The model itself failed: every row ends with the error."""
        for row in self.rows:
            row.emit(exc)
        self.rows, self.generators, self.next_ids = [], [], []
        self.mask = self.positions = self.cache = None

    def _first(self, row: Row, logits: torch.Tensor, gen: torch.Generator) -> int:
        """The first token, unless the row only scores its prompt (max_tokens 0)."""
        if row.params.max_tokens == 0:
            row.finish = "length"
            return self.pad
        return self._sample(row, logits, gen)

    def _sample(self, row: Row, logits: torch.Tensor, gen: torch.Generator) -> int:
        try:
            return _step(row, logits, self.tokenizer, gen, self.stop_ids)
        except Exception as exc:  # this row only: the batch goes on
            row.finish = "error"
            row.emit(exc)
            return self.pad

    def _adapters(self, model: Any, rows: list[Row]) -> dict[str, Any]:
        """Each row's LoRA on the shared base; a whole model (IA3, a LoRA on a merged parent)
        runs with its own adapter active, so it is given none."""
        if self.shared_base and hasattr(model, "peft_config"):
            return {"adapter_names": [r.adapter for r in rows]}
        return {}

    def _merge(
        self,
        rows: list[Row],
        generators: list[torch.Generator],
        tokens: list[int],
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: Any,
    ) -> None:
        if not all(type(layer) is DynamicLayer for layer in cache.layers):
            self.joinable = False
        if self.rows:  # both caches left-padded to one length, then stacked
            length = max(self.mask.shape[1], mask.shape[1])
            for old, new in zip(self.cache.layers, cache.layers, strict=True):
                old.keys = torch.cat([_left_pad(old.keys, length), _left_pad(new.keys, length)])
                old.values = torch.cat(
                    [_left_pad(old.values, length), _left_pad(new.values, length)]
                )
            self.mask = torch.cat([_left_pad(self.mask, length), _left_pad(mask, length)])
            self.positions = torch.cat([self.positions, positions])
        else:
            self.cache, self.mask, self.positions = cache, mask, positions
        self.rows += rows
        self.generators += generators
        self.next_ids += tokens


def _left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
    """Zeros before `t`'s sequence axis (the last of a mask, the one before it in a cache)."""
    axis = -1 if t.dim() == 2 else -2
    missing = length - t.shape[axis]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype), t], dim=axis)


def _step(
    row: Row, logits: torch.Tensor, tokenizer: Any, gen: torch.Generator, stop_ids: set[int]
) -> int:
    if row.cancelled.is_set():
        row.finish = "cancelled"
        return 0
    params = row.params
    scores = processed(logits, params, row.counts, row.matcher)
    token = choose(scores, params, gen)
    row.sampled += 1
    if params.logprobs:
        row.pending_logprobs.append(_logprob(tokenizer, logits, token, params.top_logprobs))
    if row.matcher is not None:
        row.matcher.accept(token)
    if token in stop_ids:
        row.finish = "stop"
        return token
    row.generated.append(token)
    row.counts[token] = row.counts.get(token, 0) + 1
    if row.matcher is not None and row.matcher.done:
        row.finish = "stop"
    elif len(row.generated) >= params.max_tokens:
        row.finish = "length"
    _emit_text(row, tokenizer)
    return token


def _emit_text(row: Row, tokenizer: Any) -> None:
    """Send the new text, holding back what may be the start of a stop string or a partly
    decoded character; a stop string ends the row, cut before it (OpenAI never returns it)."""
    text = tokenizer.decode(row.generated, skip_special_tokens=True)
    stops = row.params.stop or []
    cut = min((i for s in stops if (i := text.find(s, max(0, row.sent - len(s)))) >= 0), default=-1)
    if cut >= 0:
        row.finish = "stop"
        text = text[:cut]
    hold = 0 if row.finish else max((len(s) for s in stops), default=1) - 1
    if text.endswith("\ufffd") and not row.finish:
        hold = max(hold, 1)
    safe = max(row.sent, len(text) - hold)
    if safe > row.sent or row.pending_logprobs:
        row.emit(Delta(text[row.sent : safe], row.pending_logprobs or None))
        row.logprobs += row.pending_logprobs
        row.pending_logprobs = []
        row.sent = safe
    row.text = text


def _finish(row: Row, tokenizer: Any) -> None:
    if row.sent < len(row.text) or row.pending_logprobs:
        row.emit(Delta(row.text[row.sent :], row.pending_logprobs or None))
        row.logprobs += row.pending_logprobs
    if row.finish in ("cancelled", "error"):
        return
    row.emit(
        Generation(
            text=row.text,
            finish_reason=row.finish or "length",
            prompt_tokens=len(row.prompt),
            completion_tokens=row.sampled,  # the stop token counts, as in vLLM and HF
            logprobs=row.logprobs if row.params.logprobs else None,
            prompt_logprobs=row.prompt_scores,
        )
    )


def _logprob(tokenizer: Any, logits: torch.Tensor, token: int, top: int) -> TokenLogprob:
    logp = torch.log_softmax(logits.float(), dim=-1)

    def entry(t: int) -> tuple[str, float, list[int]]:
        s = tokenizer.decode([t])
        return s, float(logp[t]), list(s.encode())

    s, value, raw = entry(token)
    tops = [entry(int(t)) for t in torch.topk(logp, top).indices] if top else []
    return TokenLogprob(token=s, logprob=value, bytes=raw, top_logprobs=tops)
