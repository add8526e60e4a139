"""Choosing the next token of one generation from the model's logits, as OpenAI's sampling
fields describe: `logit_bias`, `frequency_penalty`/`presence_penalty` (on the tokens generated
so far), a grammar mask, then greedy (`temperature` 0) or temperature + nucleus (`top_p`)
sampling from the generation's own seeded generator. Logprobs are those of the model's raw
distribution, as vLLM reports them by default."""

from __future__ import annotations

from typing import Any

import torch

from core.inference.params import GenerationParams


def processed(
    logits: torch.Tensor, params: GenerationParams, counts: dict[int, int], matcher: Any
) -> torch.Tensor:
    """The logits after bias, penalties and the grammar mask (a new tensor, float32)."""
    out = logits.float().clone()
    if params.logit_bias:
        ids = torch.tensor(list(params.logit_bias), dtype=torch.long)
        out[ids] += torch.tensor(list(params.logit_bias.values()), dtype=out.dtype)
    if counts and (params.frequency_penalty or params.presence_penalty):
        ids = torch.tensor(list(counts), dtype=torch.long)
        n = torch.tensor(list(counts.values()), dtype=out.dtype)
        out[ids] -= params.frequency_penalty * n + params.presence_penalty
    if matcher is not None:
        matcher.mask(out)
    return out


def choose(logits: torch.Tensor, params: GenerationParams, generator: torch.Generator) -> int:
    """Greedy at temperature 0, else temperature + top-p sampling with `generator`."""
    if params.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < params.top_p  # always keeps the top one
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        pick = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[pick])
    return int(torch.multinomial(probs, 1, generator=generator))
