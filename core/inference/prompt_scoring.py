"""A prompt's own log probabilities, from the logits of the prefill that reads it.

Scoring clients (lm-eval's loglikelihood tasks, perplexity) send `/v1/completions` with
`echo: true` + `logprobs: k` (often `max_tokens: 0`): they need log P(token_j | tokens_<j)
for every prompt token. The prefill already computes those logits, so the engine keeps them
for the rows that ask (instead of only the last position) and reads them here. The first
token has nothing before it: its logprob is None, as in OpenAI's and vLLM's answers.
"""

from __future__ import annotations

from typing import Any

import torch

from core.inference.params import TokenLogprob


def prompt_logprobs(
    tokenizer: Any, logits: torch.Tensor, prompt: list[int], top: int
) -> list[TokenLogprob]:
    """`logits`: [len(prompt), vocab], position j predicting token j + 1; `top`: how many
    likeliest alternatives to give per token (0: none)."""
    logp = torch.log_softmax(logits[:-1].float(), dim=-1)
    targets = torch.tensor(prompt[1:], dtype=torch.long)
    chosen = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).tolist() if len(targets) else []
    tops = torch.topk(logp, top) if top and len(targets) else None
    first = tokenizer.decode([prompt[0]])
    out = [TokenLogprob(token=first, logprob=None, bytes=list(first.encode()))]
    for j, token in enumerate(prompt[1:]):
        text = tokenizer.decode([token])
        alternatives = []
        if tops is not None:
            for value, index in zip(tops.values[j].tolist(), tops.indices[j].tolist(), strict=True):
                alt = tokenizer.decode([index])
                alternatives.append((alt, value, list(alt.encode())))
        out.append(TokenLogprob(text, chosen[j], list(text.encode()), alternatives))
    return out
