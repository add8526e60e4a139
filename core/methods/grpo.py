"""Group Relative Policy Optimization (Shao et al. 2024, https://arxiv.org/abs/2402.03300).

GRPO is PPO without a value model: it samples `num_generations` completions per prompt,
scores them, and uses each completion's reward relative to its group (minus the group mean,
over the group std) as the advantage of all its tokens; a KL term (`beta`) keeps the policy
near the reference (the starting model).

Recipe: the start PPO shares (core.training.online: hyperparameters, seed, the reward, the
policy, prompts that fit) → prompts as conversations (TRL renders them with the chat template;
each row's grader item rides along as a JSON column, which TRL hands the reward function) →
train with TRL's GRPOTrainer, checkpointing (pause, resume) on the schedule supervised jobs use
→ save the artifact without the reference. A run resumed inside a group of `num_iterations`
updates samples that group's completions afresh (TRL keeps them in memory only).
"""

from __future__ import annotations

import json
import math
from typing import Any

from core.adapters import make_optimizer
from core.jobspec.recipe import TrainingContext, TrainingResult
from core.methods.base import finish
from core.training.callbacks import quiet
from core.training.online import start_online
from core.training.rewards import Reward
from core.training.rlhf_data import item_json, prompt_messages
from core.training.trl_args import (
    common_args,
    drop_reference_adapter,
    schedule,
    train_or_resume,
    trained_tokens,
)


def _text(completion: Any) -> str:
    """TRL hands conversational completions as [{"role": "assistant", "content": ...}]."""
    return completion[0]["content"] if isinstance(completion, list) else completion


def _reward_func(reward: Reward, name: str):
    """The reward in TRL's calling convention: extra dataset columns arrive as kwargs."""

    def reward_func(prompts: list, completions: list, item: list[str], **_: Any) -> list[float]:
        return reward(prompts, [_text(c) for c in completions], [json.loads(i) for i in item])

    reward_func.__name__ = name.replace(":", "_")  # TRL logs rewards/<name>/mean
    return reward_func


def _config(ctx: TrainingContext, hp: dict[str, Any]):
    from trl import GRPOConfig

    return GRPOConfig(
        **common_args(ctx, hp),
        max_steps=hp["total_steps"],
        per_device_train_batch_size=hp["batch_size"] * hp["num_generations"],
        num_generations=hp["num_generations"],
        max_completion_length=hp["max_new_tokens"],
        temperature=hp["temperature"],
        beta=hp["beta"],
        epsilon=hp["epsilon"],
        num_iterations=hp["num_iterations"],
        loss_type=hp["loss_type"],
        scale_rewards=hp["scale_rewards"],
        lr_scheduler_type="constant",  # as the papers' RL phases; PPO here is constant too
    )


def _passes_done(ctx: TrainingContext) -> int:
    """Whole passes over the prompts before the checkpoint a resumed run starts from."""
    if ctx.resume_from is None:
        return 0
    state = json.loads((ctx.resume_from / "trainer_state.json").read_text())
    return math.floor(state["epoch"] + 1e-6)  # epoch = passes + fraction of the current one


def _trainer_class(passes_done: int):
    """GRPOTrainer whose prompt order survives a resume. TRL's RepeatSampler seeds one
    generator for the whole run, so pass e shuffles with the generator as the e passes
    before it left it; a resumed run's sampler starts fresh and would revisit pass 0's order.
    Replaying those passes' draws gives it the order the uninterrupted run had."""
    import torch
    from trl import GRPOTrainer

    class Trainer(GRPOTrainer):
        def _get_train_sampler(self, dataset=None):
            sampler = super()._get_train_sampler(dataset)
            for _ in range(passes_done if sampler.shuffle else 0):
                torch.randperm(sampler.num_samples, generator=sampler.generator)
            return sampler

    return Trainer


def run(ctx: TrainingContext) -> TrainingResult:
    from datasets import Dataset

    spec = ctx.spec
    run_ = start_online(ctx, "grpo")
    hp, model = run_.hp, run_.policy
    data = Dataset.from_dict(
        {
            "prompt": [prompt_messages(ex) for ex in run_.prompts],
            "item": [item_json(ex) for ex in run_.prompts],
        }
    )
    log, plan = schedule(ctx, hp, model, run_.tokenizer)
    optimizer = make_optimizer(model, spec.adapter, hp["learning_rate"], 0.0)
    trainer = _trainer_class(_passes_done(ctx))(
        model=model,
        reward_funcs=[_reward_func(run_.reward, run_.reward_name)],
        args=_config(ctx, hp),
        train_dataset=data,
        processing_class=run_.tokenizer,
        callbacks=[log, plan],
        optimizers=(optimizer, None),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    train_or_resume(trainer, ctx)
    drop_reference_adapter(model)
    last = log.history[-1] if log.history else {}
    return finish(
        ctx,
        model,
        run_.tokenizer,
        hyperparameters=hp,
        history=log.history,
        trained_tokens=trained_tokens(trainer),
        stopped_early=log.cancelled,
        final={k: last[k] for k in ("mean_reward", "kl") if k in last},
    )
