"""PPO's maths as pure tensor functions, so each piece is checked on hand-made numbers.

Shapes: per-token tensors are [batch, response_len]; `mask` is 1 on real response tokens
(up to and including EOS) and 0 on padding after it.
References: PPO (Schulman et al. 2017, https://arxiv.org/abs/1707.06347), GAE (Schulman et
al. 2015, https://arxiv.org/abs/1506.02438), and the RLHF details of Ziegler et al. 2019
(https://arxiv.org/abs/1909.08593) and Huang et al. 2024 (https://arxiv.org/abs/2403.17031).
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean over positions where mask is 1 (padding never dilutes a statistic)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance over masked positions (Bessel-corrected by default, as in the N+ code)."""
    mask = mask.to(values.dtype)
    centered = values - masked_mean(values, mask)
    variance = masked_mean(centered**2, mask)
    count = mask.sum()
    if unbiased and count > 1:
        variance = variance * count / (count - 1)
    return variance


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """Normalise to unit variance (and zero mean) over the batch's real tokens.

    Advantage whitening makes the step size independent of the reward's scale; rewards are
    whitened without shifting the mean, which would change what the policy is paid for."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(values.dtype)


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: str = "k1") -> Tensor:
    """Per-token estimate of KL(policy || reference) from the sampled tokens' log-probs.

    k1 = log p - log p_ref is what Ziegler et al. and Stiennon et al. put in the reward;
    k3 = (r - 1) - log r with r = p_ref / p is always >= 0 and lower-variance
    (http://joschu.net/blog/kl-approx.html)."""
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}")


def per_token_rewards(
    scores: Tensor, kl: Tensor, mask: Tensor, kl_coef: float
) -> tuple[Tensor, Tensor]:
    """Reward of each action: -kl_coef * KL at every token, plus the sequence's score at its
    last real token (Ziegler et al. eq. 2). Returns (rewards, non_score_rewards)."""
    mask = mask.to(kl.dtype)
    non_score = -kl_coef * kl * mask
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards = non_score.clone()
    rewards[torch.arange(len(scores)), last] += scores.to(kl.dtype)
    return rewards, non_score


def compute_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation; returns (advantages, returns = advantages + values).

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, with
    V = 0 past the last real token, so the episode ends at EOS."""
    mask = mask.to(values.dtype)
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(values)
    last_gae = torch.zeros_like(values[:, 0])
    length = values.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(last_gae)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = delta + gamma * lam * last_gae
        advantages[:, t] = last_gae
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def policy_loss(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, cliprange: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate: max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)).

    Returns (loss, clipfrac: share of tokens where the clip was active, approx_kl: 0.5 *
    E[(log ratio)^2], a cheap estimate of how far this update moved the policy)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
    approx_kl = 0.5 * masked_mean(log_ratio**2, mask)
    return loss, clipfrac.detach(), approx_kl.detach()


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, cliprange_value: float
) -> tuple[Tensor, Tensor]:
    """Clipped value loss: 0.5 * max((V - R)^2, (V_clipped - R)^2), V_clipped kept within
    cliprange_value of the rollout's values. Returns (loss, clipfrac)."""
    clipped_values = old_values + torch.clamp(
        values - old_values, -cliprange_value, cliprange_value
    )
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    clipfrac = masked_mean((loss_clipped > loss_unclipped).to(values.dtype), mask)
    return loss, clipfrac.detach()


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of each position's categorical distribution: logsumexp(z) - sum(p * z)."""
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)
