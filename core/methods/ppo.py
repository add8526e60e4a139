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
loss), a checkpoint every `checkpoint_interval` steps and where a pause is noticed (the policy
as of that step, servable, plus core.rlhf's resume state: value head, optimizer, RNG, step), or
continuing from `ctx.resume_from` → save the artifact.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.methods.base import finish
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


def _event(step: dict[str, Any], hp: dict[str, Any]) -> dict[str, Any]:
    """core.rlhf step metrics → a metrics event (OpenAI's step/train_loss shape plus RL's)."""
    return {
        "step": step["step"],
        "total_steps": hp["total_steps"],
        # the loss the optimizer minimised, so the events read like every other method's
        "train_loss": step["policy_loss"] + hp["vf_coef"] * step["value_loss"],
        **{k: v for k, v in step.items() if k != "step"},
    }


class _Reports:
    """This run's metrics events, and its checkpoints: the policy as of the step (an artifact
    like the final one) with core.rlhf's resume state beside it."""

    def __init__(self, ctx: TrainingContext, hp: dict[str, Any], policy: Any, tokenizer: Any):
        self.ctx, self.hp, self.policy, self.tokenizer = ctx, hp, policy, tokenizer
        self.events: list[dict[str, Any]] = []

    def metrics(self, step: dict[str, Any]) -> None:
        self.events.append(_event(step, self.hp))
        self.ctx.reporter.metrics(self.events[-1])

    def checkpoint(self, step: int, state_dir: Path) -> None:
        from core.adapters import save_artifact
        from core.training.schedule import checkpoint_metrics

        artifact = self.ctx.work_dir / f"artifact-{step}"
        save_artifact(self.policy, self.tokenizer, self.ctx.spec.adapter, artifact)
        metrics = checkpoint_metrics(self.events, step)
        self.ctx.reporter.checkpoint(step, artifact, state_dir, metrics)
        shutil.rmtree(artifact, ignore_errors=True)  # uploaded; local disk is not the store


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
    from core.rlhf import Checkpointing, PPOConfig, train_ppo

    run_ = start_online(ctx, "ppo")
    hp, tokenizer = run_.hp, run_.tokenizer
    ctx.reporter.resolved(hp)
    prompts = [(render_prompt(tokenizer, ex), ex) for ex in run_.prompts]
    reports = _Reports(ctx, hp, run_.policy, tokenizer)
    steps = train_ppo(
        run_.policy,
        tokenizer,
        [rendered for rendered, _ in prompts],
        _reward_fn(run_.reward, prompts),
        PPOConfig(**{k: hp[k] for k in _CONFIG_FIELDS}),
        on_step=reports.metrics,
        should_stop=ctx.reporter.should_stop,
        checkpointing=Checkpointing(
            every=hp["checkpoint_interval"],
            save=reports.checkpoint,
            work_dir=ctx.work_dir / "trainer",
            pausing=ctx.reporter.pausing,
        ),
        resume_from=ctx.resume_from,
    )
    history = [_event(step, hp) for step in steps]  # the results file: the resumed-from steps too
    last = history[-1] if history else {}
    return finish(
        ctx,
        run_.policy,
        tokenizer,
        hyperparameters=hp,
        history=history,
        trained_tokens=sum(m["completion_length"] for m in steps) * hp["batch_size"],
        stopped_early=len(steps) < hp["total_steps"],  # train_ppo stops early only on cancel
        final={k: last[k] for k in ("mean_reward", "kl") if k in last},
    )
