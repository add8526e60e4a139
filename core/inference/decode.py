"""One batch of generations decoded together: the heart of the in-process engine's batching.

The prompts are left-padded into one tensor and run through the model step by step with a
shared KV cache; each row keeps its own sampling fields, seed, penalties, grammar, stop
strings and token budget, and finishes on its own. With a PEFT model carrying several LoRA
adapters, `adapter_names` gives each row its adapter ("__base__": none), so requests for
different fine-tuned models of one base share a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from core.inference.params import Delta, Generation, GenerationParams, TokenLogprob
from core.inference.sampling import choose, processed

BASE_ADAPTER = "__base__"
"""PEFT's name for "no adapter" in a mixed-adapter batch."""

Emit = Callable[[Delta | Generation | BaseException], None]


@dataclass
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

    def generator(self) -> torch.Generator:
        gen = torch.Generator()
        if self.params.seed is not None:
            gen.manual_seed(self.params.seed)
        else:
            gen.seed()
        return gen


def decode_batch(
    model: Any, tokenizer: Any, rows: list[Row], stop_ids: set[int], mixed_adapters: bool
) -> None:
    """Generate every row to its end, emitting deltas and then one Generation per row.

    A row whose own step fails (its grammar, its stop strings) ends with its exception; the
    others go on. `mixed_adapters`: `model` is a PEFT LoRA model and each row names its adapter.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(r.prompt) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r.prompt)) + r.prompt for r in rows])
    mask = torch.tensor([[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in rows])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    extra: dict[str, Any] = {}
    if mixed_adapters:
        extra["adapter_names"] = [r.adapter for r in rows]
    generators = [r.generator() for r in rows]
    past = None
    with torch.inference_mode():
        for _ in range(max(r.params.max_tokens for r in rows)):
            out = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=past,
                use_cache=True,
                logits_to_keep=1,
                **extra,
            )
            past = out.cache
            logits = out.logits[:, -1, :]
            next_ids = []
            for i, row in enumerate(rows):
                token = pad
                if row.finish is None:
                    try:
                        token = _step(row, logits[i], tokenizer, generators[i], stop_ids)
                    except Exception as exc:  # this row only: the batch goes on
                        row.finish = "error"
                        row.emit(exc)
                next_ids.append(token)
            if all(r.finish is not None for r in rows):
                break
            ids = torch.tensor(next_ids).unsqueeze(-1)
            mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=mask.dtype)], dim=-1)
            positions = positions[:, -1:] + 1
    for row in rows:
        _finish(row, tokenizer)


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
