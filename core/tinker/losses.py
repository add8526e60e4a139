"""Tinker's losses, token-level sums with no normalisation (the SDK's documented math).

`lp` is log p_theta(target_tokens[i] | prefix) as computed by the trainer; `q` the sampler's
logprobs; `A` the advantages. Every loss is summed over tokens and datums, so a chunked batch
(the SDK splits big batches) accumulates the same gradient as one call."""

from __future__ import annotations

import torch


def _rl(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return inputs["logprobs"], inputs["advantages"]


def cross_entropy(lp: torch.Tensor, inputs: dict[str, torch.Tensor], cfg: dict) -> torch.Tensor:
    """L = -sum(w * lp); w may be any real number (forward_backward_custom sends -dC/dlp)."""
    w = inputs.get("weights")
    return -(lp * w).sum() if w is not None else -lp.sum()


def importance_sampling(lp, inputs, cfg) -> torch.Tensor:
    """L = -sum(exp(lp - q) * A)."""
    q, adv = _rl(inputs)
    return -(torch.exp(lp - q) * adv).sum()


def ppo(lp, inputs, cfg) -> torch.Tensor:
    """L = -sum(min(r A, clip(r, lo, hi) A)), lo/hi default 0.8/1.2."""
    q, adv = _rl(inputs)
    lo, hi = cfg.get("clip_low_threshold", 0.8), cfg.get("clip_high_threshold", 1.2)
    ratio = torch.exp(lp - q)
    return -torch.minimum(ratio * adv, torch.clamp(ratio, lo, hi) * adv).sum()


def cispo(lp, inputs, cfg) -> torch.Tensor:
    """L = -sum(sg(clip(r, lo, hi)) * lp * A): the clipped ratio only weighs the gradient."""
    q, adv = _rl(inputs)
    lo, hi = cfg.get("clip_low_threshold", 0.8), cfg.get("clip_high_threshold", 1.2)
    weight = torch.clamp(torch.exp(lp - q), lo, hi).detach()
    return -(weight * lp * adv).sum()


def dro(lp, inputs, cfg) -> torch.Tensor:
    """L = -sum(lp A - beta/2 (lp - q)^2); beta defaults to 0.05 (the docs' example)."""
    q, adv = _rl(inputs)
    beta = cfg.get("beta", 0.05)
    return -(lp * adv - 0.5 * beta * (lp - q) ** 2).sum()


LOSSES = {
    "cross_entropy": cross_entropy,
    "importance_sampling": importance_sampling,
    "ppo": ppo,
    "cispo": cispo,
    "dro": dro,
}
