"""PPO's maths on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from core.rlhf import losses


def test_masked_mean_ignores_padding() -> None:
    values = torch.tensor([[1.0, 3.0, 100.0], [5.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert losses.masked_mean(values, mask).item() == pytest.approx(3.0)
    assert losses.masked_mean(values, mask, dim=1).tolist() == [2.0, 5.0]


def test_masked_var_and_whiten() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert losses.masked_var(values, mask).item() == pytest.approx(1.0)  # unbiased var of 1,2,3
    assert losses.masked_var(values, mask, unbiased=False).item() == pytest.approx(2 / 3)
    white = losses.masked_whiten(values, mask)
    assert white[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-4)
    assert white[0, 3].item() == 0.0
    kept = losses.masked_whiten(values, mask, shift_mean=False)
    assert kept[0, :3].tolist() == pytest.approx([1.0, 2.0, 3.0], abs=1e-4)


def test_kl_penalty_estimators() -> None:
    logprobs, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    assert losses.kl_penalty(logprobs, ref, "k1")[0].tolist() == pytest.approx([0.5, -1.0])
    k3 = losses.kl_penalty(logprobs, ref, "k3")
    expected = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]
    assert k3[0].tolist() == pytest.approx(expected)
    assert (k3 >= 0).all()
    with pytest.raises(ValueError):
        losses.kl_penalty(logprobs, ref, "k2")


def test_per_token_rewards_put_score_on_last_real_token() -> None:
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards, non_score = losses.per_token_rewards(torch.tensor([1.0, 2.0]), kl, mask, 0.5)
    expected_non_score = torch.tensor([[-0.05, -0.1, -0.15], [-0.2, -0.25, 0.0]])
    torch.testing.assert_close(non_score, expected_non_score)
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, -0.1, 0.85], [-0.2, 1.75, 0.0]]))


def test_gae_matches_hand_computation() -> None:
    rewards = torch.tensor([[0.0, 0.5, 1.0]])
    values = torch.tensor([[0.2, 0.4, 0.6]])
    gamma, lam = 0.9, 0.8
    # delta_t = r_t + gamma * V_{t+1} - V_t, with V_3 = 0
    d2 = 1.0 - 0.6
    d1 = 0.5 + 0.9 * 0.6 - 0.4
    d0 = 0.0 + 0.9 * 0.4 - 0.2
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    adv, ret = losses.compute_advantages(rewards, values, torch.ones(1, 3), gamma, lam)
    assert adv[0].tolist() == pytest.approx([a0, a1, a2])
    assert ret[0].tolist() == pytest.approx([a0 + 0.2, a1 + 0.4, a2 + 0.6])


def test_gae_episode_ends_at_mask() -> None:
    """Padding after EOS contributes nothing: same result as the unpadded sequence."""
    rewards = torch.tensor([[0.3, 1.0, 9.0, 9.0]])
    values = torch.tensor([[0.1, 0.2, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0, 0]])
    adv, ret = losses.compute_advantages(rewards, values, mask, 1.0, 0.95)
    short_adv, short_ret = losses.compute_advantages(
        rewards[:, :2], values[:, :2], mask[:, :2], 1.0, 0.95
    )
    assert adv[0, :2].tolist() == pytest.approx(short_adv[0].tolist())
    assert adv[0, 2:].tolist() == [0.0, 0.0]
    assert ret[0, 2:].tolist() == [0.0, 0.0]
    # gamma = lam = 1: the advantage is the return-to-go minus the value
    adv1, _ = losses.compute_advantages(rewards, values, mask, 1.0, 1.0)
    assert adv1[0, :2].tolist() == pytest.approx([1.3 - 0.1, 1.0 - 0.2])


def test_policy_loss_clipping() -> None:
    mask = torch.ones(1, 3)
    advantages = torch.tensor([[1.0, -1.0, 1.0]])
    old = torch.zeros(1, 3)
    loss, clipfrac, approx_kl = losses.policy_loss(old.clone(), old, advantages, mask, 0.2)
    assert loss.item() == pytest.approx(-1 / 3)  # ratio 1: loss = -mean(A)
    assert clipfrac.item() == 0.0 and approx_kl.item() == 0.0

    new = torch.log(torch.tensor([[1.5, 1.5, 0.5]])).requires_grad_()
    loss, clipfrac, approx_kl = losses.policy_loss(new, old, advantages, mask, 0.2)
    # token 0: A>0, ratio 1.5 -> clipped to 1.2 (no gradient); token 1: A<0, ratio 1.5 ->
    # unclipped 1.5 is the pessimistic term; token 2: A>0, ratio 0.5 -> unclipped 0.5
    assert loss.item() == pytest.approx((-1.2 + 1.5 - 0.5) / 3)
    assert clipfrac.item() == pytest.approx(1 / 3)
    assert approx_kl.item() == pytest.approx(
        0.5 * (2 * math.log(1.5) ** 2 + math.log(0.5) ** 2) / 3
    )
    loss.backward()
    assert new.grad[0, 0].item() == 0.0
    assert new.grad[0, 1].item() != 0.0 and new.grad[0, 2].item() != 0.0


def test_value_loss_clipping() -> None:
    old_values = torch.tensor([[0.0, 0.0]])
    returns = torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[0.5, 0.1]])
    loss, clipfrac = losses.value_loss(values, old_values, returns, torch.ones(1, 2), 0.2)
    # token 0: clipped value 0.2 -> (0.8)^2 beats (0.5)^2; token 1: inside the clip -> 0.9^2
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81) / 2)
    assert clipfrac.item() == pytest.approx(0.5)


def test_entropy_from_logits() -> None:
    uniform = torch.zeros(2, 8)
    assert losses.entropy_from_logits(uniform).tolist() == pytest.approx([math.log(8)] * 2)
    peaked = torch.tensor([[1000.0, 0.0, 0.0]])
    assert losses.entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)
