"""Group Relative Policy Optimization (Shao et al. 2024, https://arxiv.org/abs/2402.03300).

GRPO is PPO without a value model: it samples `num_generations` completions per prompt,
scores them, and uses each completion's reward relative to its group (minus the group mean,
over the group std) as the advantage of all its tokens; a KL term (`beta`) keeps the policy
near the reference (the starting model).

Recipe: the start PPO shares (core.training.online: hyperparameters, seed, the reward, the
policy, prompts that fit) → prompts as conversations (TRL renders them with the chat template;
each row's grader item rides along as a JSON column, which TRL hands the reward function) →
train with TRL's GRPOTrainer → save the artifact without the reference.
"""

from __future__ import annotations

import json
from typing import Any

from core.adapters import make_optimizer
from core.methods.base import TrainingContext, TrainingResult, finish
from core.training.callbacks import ReporterCallback, quiet
from core.training.online import start_online
from core.training.rewards import Reward
from core.training.rlhf_data import item_json, prompt_messages
from core.training.trl_args import common_args, drop_reference_adapter, trained_tokens


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


def run(ctx: TrainingContext) -> TrainingResult:
    from datasets import Dataset
    from trl import GRPOTrainer

    spec = ctx.spec
    run_ = start_online(ctx, "grpo")
    hp, model = run_.hp, run_.policy
    data = Dataset.from_dict(
        {
            "prompt": [prompt_messages(ex) for ex in run_.prompts],
            "item": [item_json(ex) for ex in run_.prompts],
        }
    )
    log = ReporterCallback(ctx.reporter)
    optimizer = make_optimizer(model, spec.adapter, hp["learning_rate"], 0.0)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[_reward_func(run_.reward, run_.reward_name)],
        args=_config(ctx, hp),
        train_dataset=data,
        processing_class=run_.tokenizer,
        callbacks=[log],
        optimizers=(optimizer, None),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    trainer.train()
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
