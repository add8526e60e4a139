"""PPO for RLHF (Ziegler et al. 2019; Stiennon et al. 2020; Huang et al. 2024, "The N+
Implementation Details of RLHF with PPO", https://arxiv.org/abs/2403.17031).

Each step samples a completion per prompt, scores it with the reward (a Lathe reward model,
as in the papers, or a grader), and updates the policy with the clipped PPO objective against
a value head (GAE advantages), every token paying a KL penalty (`kl_coef`) to the reference:
the starting model. The loop is core.rlhf (trl 1.x has no PPO trainer).

Recipe: the start GRPO shares (core.training.online: hyperparameters, seed, the reward, the
policy with its adapter, prompts that fit) → prompts rendered with the chat template →
core.rlhf.train_ppo, whose reference is the policy with its adapter switched off (full weights
get a frozen copy), one metrics event per step (mean reward, KL, entropy, policy and value
loss) → save the artifact.
"""

from __future__ import annotations

from typing import Any

from core.methods.base import SpecError, TrainingContext, TrainingResult, finish
from core.training.online import start_online
from core.training.rewards import Reward
from core.training.rlhf_data import grader_item, prompt_messages, render_prompt

_CONFIG_FIELDS = (
    "learning_rate",
    "batch_size",
    "mini_batch_size",
    "ppo_epochs",
    "kl_coef",
    "gamma",
    "lam",
    "cliprange",
    "cliprange_value",
    "vf_coef",
    "max_new_tokens",
    "temperature",
    "whiten_rewards",
    "missing_eos_penalty",
    "total_steps",
    "seed",
)


class _Metrics:
    """core.rlhf step metrics → metrics events (OpenAI's step/train_loss shape plus RL's)."""

    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp
        self.history: list[dict[str, Any]] = []

    def __call__(self, step: dict[str, Any]) -> None:
        data = {
            "step": step["step"],
            "total_steps": self.hp["total_steps"],
            # the loss the optimizer minimised, so the events read like every other method's
            "train_loss": step["policy_loss"] + self.hp["vf_coef"] * step["value_loss"],
            **{k: v for k, v in step.items() if k != "step"},
        }
        self.history.append(data)
        self.ctx.reporter.metrics(data)


def _reward_fn(reward: Reward, prompts: list[Any]):
    """core.rlhf's reward_fn(rendered prompts, completions) over Lathe's reward signature."""
    rows: dict[str, tuple[list, dict]] = {}
    for rendered, ex in prompts:
        row = (prompt_messages(ex), grader_item(ex))
        if rows.setdefault(rendered, row)[1] != row[1]:  # the loop hands back prompts only
            raise SpecError(
                f"training_file line {ex.line} repeats an earlier prompt with different fields; "
                "PPO tells rows apart by their prompt: merge them (or use grpo)",
                param="training_file",
            )

    def reward_fn(rendered: list[str], completions: list[str]) -> list[float]:
        messages, items = zip(*(rows[r] for r in rendered), strict=True)
        return reward(list(messages), completions, list(items))

    return reward_fn


def run(ctx: TrainingContext) -> TrainingResult:
    from core.rlhf import PPOConfig, train_ppo

    run_ = start_online(ctx, "ppo")
    hp, tokenizer = run_.hp, run_.tokenizer
    prompts = [(render_prompt(tokenizer, ex), ex) for ex in run_.prompts]
    metrics = _Metrics(ctx, hp)
    history = train_ppo(
        run_.policy,
        tokenizer,
        [rendered for rendered, _ in prompts],
        _reward_fn(run_.reward, prompts),
        PPOConfig(**{k: hp[k] for k in _CONFIG_FIELDS}),
        on_step=metrics,
        should_stop=ctx.reporter.should_stop,
    )
    last = metrics.history[-1] if metrics.history else {}
    return finish(
        ctx,
        run_.policy,
        tokenizer,
        hyperparameters=hp,
        history=metrics.history,
        trained_tokens=sum(m["completion_length"] for m in history) * hp["batch_size"],
        stopped_early=len(history) < hp["total_steps"],  # train_ppo stops early only on cancel
        final={k: last[k] for k in ("mean_reward", "kl") if k in last},
    )
