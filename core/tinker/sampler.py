"""Sampling for Tinker's `asample`: several samples of one prompt decoded together with a KV
cache, on the trainer that holds the base (and, for sampler weights, the LoRA as an adapter).

Semantics follow the SDK: `stop` None stops at EOS, [] never stops, strings or token ids stop
when produced; the returned tokens include the stop. Logprobs are the model's own (the raw
distribution, before temperature/top-k/top-p), as vLLM reports them; prompt logprobs are
log p(prompt[i] | prompt[:i]) with None for the first token.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch

from core.errors import InvalidRequest
from core.tinker.codec import Sequence


@dataclass
class Params:
    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int | None
    stop_ids: set[int]
    stop_strs: list[str]


def params_of(body: dict[str, Any], tokenizer: Any, room: int, cap: int) -> Params:
    sp = body.get("sampling_params") or {}
    stop = sp.get("stop")
    ids: set[int] = set()
    strs: list[str] = []
    if stop is None:
        ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    elif isinstance(stop, str):
        strs = [stop]
    elif all(isinstance(s, int) for s in stop):
        ids = set(stop)
    elif all(isinstance(s, str) for s in stop):
        strs = list(stop)
    else:
        raise InvalidRequest(
            "sampling_params.stop mixes strings and token ids", param="sampling_params.stop"
        )
    mt = sp.get("max_tokens")
    return Params(
        max_tokens=min(room, cap if mt is None else mt),
        temperature=float(sp.get("temperature", 1.0)),
        top_k=int(sp.get("top_k", -1)),
        top_p=float(sp.get("top_p", 1.0)),
        seed=sp.get("seed"),
        stop_ids=ids,
        stop_strs=strs,
    )


def _choose(logp: torch.Tensor, p: Params, gen: torch.Generator) -> torch.Tensor:
    if p.temperature == 0:
        return logp.argmax(-1)
    logits = logp / p.temperature
    if p.top_k > 0:
        kth = torch.topk(logits, min(p.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = torch.softmax(logits, -1)
    if p.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True, dim=-1)
        drop = sorted_p.cumsum(-1) - sorted_p >= p.top_p  # always keeps the top token
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=gen).squeeze(-1)


@torch.no_grad()
def sample(
    model: Any, tokenizer: Any, prompt: list[int], n: int, p: Params, prompt_logprobs: bool
) -> tuple[list[Sequence], list[float | None] | None]:
    ids = torch.tensor([prompt] * n, dtype=torch.long, device=model.device)
    out = model(input_ids=ids, use_cache=True)
    plp = None
    if prompt_logprobs:
        lp = torch.log_softmax(out.logits[0, :-1].float(), -1)
        got = lp.gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()
        plp = [None, *got]
    gen = torch.Generator(device=ids.device)
    gen.manual_seed(p.seed if p.seed is not None else random.getrandbits(63))
    seqs = [Sequence([], [], False) for _ in range(n)]
    done = [False] * n
    logits, past = out.logits[:, -1], out.past_key_values
    for _ in range(p.max_tokens):
        logp = torch.log_softmax(logits.float(), -1)
        tok = _choose(logp, p, gen)
        lps = logp.gather(-1, tok[:, None]).squeeze(-1).tolist()
        for i, (t, lp_) in enumerate(zip(tok.tolist(), lps, strict=True)):
            if done[i]:
                continue
            seqs[i].tokens.append(t)
            seqs[i].logprobs.append(lp_)
            if t in p.stop_ids or (
                p.stop_strs and any(s in tokenizer.decode(seqs[i].tokens) for s in p.stop_strs)
            ):
                done[i] = seqs[i].stopped = True
        if all(done):
            break
        out = model(input_ids=tok[:, None], past_key_values=past, use_cache=True)
        logits, past = out.logits[:, -1], out.past_key_values
    return seqs, plp
