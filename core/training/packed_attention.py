"""Attention over padding-free packed rows that skips the blocks between sequences.

A packed row holds several examples back to back. Plain SDPA attends over it with a
block-diagonal causal mask, so it computes the whole row × row score matrix and masks most of
it away: a 1024-token row of eight ~128-token examples does eight times the attention work it
needs. Flash-attention's "varlen" kernels solve this on CUDA; on the CPU we get the same by
calling SDPA once per example, causally, using the boundaries (`cu_seq_lens_q`) that TRL's
padding-free collator passes with every batch. The result is the same attention, so training
is unchanged except for speed (bench/train_throughput.py).

Inputs without boundaries (generation, padded batches) go to transformers' own SDPA, with the
mask it builds as usual.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "lathe_packed_sdpa"


def packed_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; query (1, heads, tokens, dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    packed = cu_seq_lens_q is not None and query.shape[0] == 1 and query.shape[2] == key.shape[2]
    if not packed:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    bounds = cu_seq_lens_q.tolist()
    gqa = query.shape[1] != key.shape[1]
    outputs = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            dropout_p=dropout,
            scale=scaling,
            is_causal=True,
            enable_gqa=gqa,
        )
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        if end > start
    ]
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None


def use_packed_attention(model: torch.nn.Module) -> None:
    """Switch a transformers model (or a peft model around one) to `packed_sdpa`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # for the inputs it hands to SDPA
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(NAME)
