"""Sampling completions and scoring them token by token.

Details that PPO on language models gets wrong silently (Huang et al. 2024,
https://arxiv.org/abs/2403.17031): prompts are left-padded so every completion starts at the
same column; sampling uses the full distribution (top_k=0, top_p=1) at `temperature`, and the
log-probs used for the ratio divide the logits by the same temperature; everything after the
first EOS is padding and masked out; position ids come from the attention mask so padding
does not shift positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.rlhf.losses import entropy_from_logits


@dataclass
class Samples:
    """A batch of prompts and sampled completions, as token ids."""

    query_ids: Tensor  # [B, P], left-padded
    query_mask: Tensor  # [B, P]
    response_ids: Tensor  # [B, R], pad after the first EOS
    response_mask: Tensor  # [B, R], 1 up to and including the first EOS
    ended: Tensor  # [B] bool: the completion emitted EOS

    @property
    def input_ids(self) -> Tensor:
        return torch.cat([self.query_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> Tensor:
        return torch.cat([self.query_mask, self.response_mask], dim=1)

    def select(self, index: Tensor) -> Samples:
        return Samples(
            *(
                t[index]
                for t in (
                    self.query_ids,
                    self.query_mask,
                    self.response_ids,
                    self.response_mask,
                    self.ended,
                )
            )
        )


def _eos_ids(policy: nn.Module, tokenizer) -> list[int]:
    """The tokenizer's EOS plus any the model's generation config adds (chat models often
    stop on an end-of-turn token as well, e.g. Llama 3's <|eot_id|>)."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    extra = getattr(getattr(policy, "generation_config", None), "eos_token_id", None)
    for eos in extra if isinstance(extra, list) else [extra]:
        if isinstance(eos, int) and eos not in ids:
            ids.append(eos)
    if not ids:
        raise ValueError("no eos_token_id on the tokenizer or model; PPO needs completions to end")
    return ids


def mask_after_eos(response_ids: Tensor, eos_ids: list[int], pad_id: int) -> tuple[Tensor, ...]:
    """(response_ids with pad after the first EOS, mask, ended)."""
    is_eos = torch.isin(response_ids, torch.tensor(eos_ids, device=response_ids.device))
    seen_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0
    mask = (~seen_before).long()
    return response_ids.masked_fill(seen_before, pad_id), mask, is_eos.any(dim=1)


@torch.no_grad()
def sample(
    policy: nn.Module,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float,
    top_k: int = 0,
) -> Samples:
    """Left-pad `prompts` (already chat-rendered strings) and sample one completion each."""
    from transformers import GenerationConfig

    device = next(policy.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    query_ids, query_mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    eos_ids = _eos_ids(policy, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=top_k,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
    )
    output = policy.generate(
        input_ids=query_ids, attention_mask=query_mask, generation_config=config
    )
    response_ids, response_mask, ended = mask_after_eos(
        output[:, query_ids.shape[1] :], eos_ids, pad_id
    )
    return Samples(query_ids, query_mask, response_ids, response_mask, ended)


def decode_completions(tokenizer, samples: Samples) -> list[str]:
    """Completion texts without EOS and padding."""
    rows = [
        ids[mask.bool()]
        for ids, mask in zip(samples.response_ids, samples.response_mask, strict=True)
    ]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)


def forward(
    model: nn.Module,
    samples: Samples,
    temperature: float,
    value_head: nn.Module | None = None,
    with_entropy: bool = False,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Log-probs of the sampled response tokens [B, R], and optionally the value of the state
    before each token [B, R] and the policy's per-token entropy [B, R]."""
    attention_mask = samples.attention_mask
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=samples.input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        output_hidden_states=value_head is not None,
        use_cache=False,
    )
    start, length = samples.query_ids.shape[1] - 1, samples.response_ids.shape[1]
    logits = out.logits[:, start : start + length].float() / temperature
    logprobs = torch.gather(
        logits.log_softmax(dim=-1), 2, samples.response_ids.unsqueeze(-1)
    ).squeeze(-1)
    values = None
    if value_head is not None:
        values = value_head(out.hidden_states[-1][:, start : start + length])
    entropy = entropy_from_logits(logits.detach()) if with_entropy else None
    return logprobs, values, entropy
