"""What PPO and GRPO do the same way before their loops differ.

Resolve hyperparameters → seed → the reward (a grader checked against every prompt row up
front, or a reward model) → load the policy with its adapter → keep the prompts that fit
max_seq_length (a cut prompt would be a different question), reporting those left out → the
checkpoint interval in steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.adapters import load_for_training
from core.data.examples import PromptExample
from core.jobspec.recipe import SpecError, TrainingContext
from core.training.auto import AUTO_CHECKPOINTS, resolve_online
from core.training.rewards import Reward, make_reward
from core.training.rlhf_data import fitting_prompts


@dataclass
class OnlineStart:
    hp: dict[str, Any]
    reward: Reward
    reward_name: str
    policy: Any
    tokenizer: Any
    prompts: list[PromptExample]


def start_online(ctx: TrainingContext, method: str) -> OnlineStart:
    from transformers import set_seed

    spec = ctx.spec
    block = getattr(spec.method, method)
    param = f"method.{method}"
    hp = resolve_online(
        method, block.hyperparameters, len(ctx.train_examples), spec.adapter.type, ctx.seed
    )
    set_seed(hp["seed"])  # adapter initialisation and sampling draw random numbers
    reward, reward_name = make_reward(ctx, block, param)
    policy, tokenizer = load_for_training(ctx.base_model_path, spec.adapter, device=ctx.device)
    prompts, too_long = fitting_prompts(tokenizer, ctx.train_examples, hp["max_seq_length"])
    if not prompts:
        raise SpecError(
            f"no prompt fits max_seq_length={hp['max_seq_length']} tokens",
            param=f"{param}.hyperparameters.max_seq_length",
        )
    if too_long:
        ctx.reporter.message(
            f"{too_long} prompts longer than max_seq_length="
            f"{hp['max_seq_length']} tokens were left out",
            level="warn",
        )
    hp["checkpoint_interval"] = checkpoint_steps(hp, len(prompts))
    ctx.reporter.message(
        f"Training {method.upper()} ({spec.adapter.type}) on {len(prompts)} prompts with "
        f"{reward_name}: {hp['total_steps']} steps of {hp['batch_size']} prompts"
        + (f", resuming from {ctx.resume_from.name}" if ctx.resume_from else ""),
        data={"hyperparameters": hp},
    )
    return OnlineStart(hp, reward, reward_name, policy, tokenizer, prompts)


def checkpoint_steps(hp: dict[str, Any], n_prompts: int) -> int:
    """`checkpoint_interval` in policy updates: "epoch" is one pass over the prompts; "auto"
    a tenth of the run (an online run is often a single pass, so "every epoch" would leave a
    crash nothing to resume from)."""
    value = hp["checkpoint_interval"]
    if value == "epoch":
        return max(1, math.ceil(n_prompts / hp["batch_size"]))
    if value == "auto":
        return max(1, math.ceil(hp["total_steps"] / AUTO_CHECKPOINTS))
    return value
