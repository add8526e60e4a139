"""PPO end to end on the tiny random-init Llama.

The reward is the share of digit characters in the completion. It is dense (a random policy
already emits digit tokens now and then), so a policy can learn it from a random init in a
few dozen steps. The LoRA adapts q_proj, v_proj and lm_head: the tiny model's random
lm_head has ~0.02-scale weights after a normalised hidden state, which caps how far
attention-only LoRA can move the logits; with lm_head adapted the reward climbs quickly.
"""

from __future__ import annotations

import math

import pytest
import torch

from core.graders import make_reward_fn, parse_grader
from core.rlhf import PPOConfig, PPOTrainer, train_ppo

METRICS = {
    "step",
    "mean_reward",
    "kl",
    "entropy",
    "policy_loss",
    "value_loss",
    "clipfrac",
    "approx_kl",
}


def digit_share(prompts: list[str], completions: list[str]) -> list[float]:
    return [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]


def lora_policy(base_model):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "lm_head"]
    )
    torch.manual_seed(0)  # LoRA A matrices are drawn from the global generator
    return get_peft_model(base_model, config)


def small_config(**overrides) -> PPOConfig:
    values = dict(
        learning_rate=3e-3,
        batch_size=16,
        mini_batch_size=8,
        ppo_epochs=4,
        max_new_tokens=8,
        temperature=1.0,
        kl_coef=0.01,
        total_steps=25,
        seed=0,
    )
    return PPOConfig(**(values | overrides))


def test_ppo_lora_learns_an_easy_reward(base_model, tokenizer, chat_prompts) -> None:
    policy = lora_policy(base_model)
    base_weight = policy.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
    base_before = base_weight.detach().clone()
    seen: list[dict] = []

    history = train_ppo(
        policy, tokenizer, chat_prompts, digit_share, small_config(), on_step=seen.append
    )

    assert seen == history and [m["step"] for m in history] == list(range(1, 26))
    assert set(history[0]) >= METRICS
    assert all(math.isfinite(v) for m in history for v in m.values())
    assert abs(history[0]["kl"]) < 1e-4  # zero-init LoRA: policy == reference at the start
    first = sum(m["mean_reward"] for m in history[:5]) / 5
    last = sum(m["mean_reward"] for m in history[-5:]) / 5
    print(f"digit share: first 5 steps {first:.3f}, last 5 steps {last:.3f}")
    assert last > first + 0.15 and last > 3 * first
    assert history[-1]["kl"] > 0.1  # the policy moved away from the reference...
    torch.testing.assert_close(base_weight, base_before)  # ...which stayed the base model


def test_full_model_policy_uses_frozen_copy_and_stops_on_request(
    base_model, tokenizer, chat_prompts
) -> None:
    polls = iter([False, False, True])
    trainer_steps = train_ppo(
        base_model,
        tokenizer,
        chat_prompts,
        digit_share,
        small_config(
            learning_rate=1e-3, batch_size=4, mini_batch_size=2, ppo_epochs=1, total_steps=10
        ),
        should_stop=lambda: next(polls),
    )
    assert len(trainer_steps) == 2

    trainer = PPOTrainer(
        base_model, tokenizer, digit_share, small_config(batch_size=4, mini_batch_size=4)
    )
    assert trainer.ref_model is not None and trainer.ref_model is not base_model
    assert not any(p.requires_grad for p in trainer.ref_model.parameters())
    before = [p.detach().clone() for p in trainer.ref_model.parameters()]
    trainer.step(chat_prompts[:4])
    after = list(trainer.ref_model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert trainer.step(chat_prompts[:4])["kl"] != 0.0


def test_grader_reward_plugs_in(base_model, tokenizer, chat_prompts) -> None:
    grader = parse_grader(
        {"type": "regex", "name": "digit", "input": "{{sample.output_text}}", "pattern": r"\d"}
    )
    grade_batch = make_reward_fn(grader)

    def reward_fn(prompts: list[str], completions: list[str]) -> list[float]:
        return grade_batch(completions, [{} for _ in completions])

    history = train_ppo(
        lora_policy(base_model),
        tokenizer,
        chat_prompts,
        reward_fn,
        small_config(total_steps=2, batch_size=8),
    )
    assert len(history) == 2 and 0.0 <= history[0]["mean_reward"] <= 1.0


@pytest.mark.parametrize("scores", [[float("nan")] * 4, [1.0]])
def test_reward_fn_must_return_one_finite_score_each(
    base_model, tokenizer, chat_prompts, scores: list[float]
) -> None:
    trainer = PPOTrainer(
        base_model, tokenizer, lambda p, c: scores, small_config(batch_size=4, mini_batch_size=4)
    )
    with pytest.raises(ValueError, match="one finite score"):
        trainer.step(chat_prompts[:4])


def test_config_rejects_minibatch_larger_than_batch() -> None:
    with pytest.raises(ValueError, match="mini_batch_size"):
        PPOConfig(batch_size=4, mini_batch_size=8)
