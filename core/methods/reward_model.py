"""Reward model training (Ouyang et al. 2022, InstructGPT, https://arxiv.org/abs/2203.02155).

A reward model maps a conversation to one scalar. It is the base model with a one-output
classification head (AutoModelForSequenceClassification, num_labels=1), trained on preference
pairs (ranked completions arrive already expanded into their pairs) with the pairwise loss
-log sigmoid(r(chosen) - r(rejected)).

Recipe: resolve hyperparameters → seed → load the model as a one-label sequence classifier
with its adapter (the new head always trains) → pairs in TRL's conversational format → train
with TRL's RewardTrainer, validating each epoch and checkpointing (pause, resume) on the
schedule supervised jobs use → pair accuracy (share of pairs scored chosen > rejected) on the
validation split, or on the training pairs when there is none → save the artifact, published
as a model with task "reward_model" (usable by ppo/grpo jobs and /v1/rewards).
"""

from __future__ import annotations

from typing import Any

from core.adapters import load_for_training
from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.methods.base import finish
from core.training.auto import resolve_preference
from core.training.callbacks import rename_metrics
from core.training.rlhf_data import preference_dataset
from core.training.trl_args import (
    epoch_args,
    preference_trainer,
    train_or_resume,
    trained_tokens,
    with_schedule,
)

HP = "method.reward_model.hyperparameters"


def _keep_head_fp32(model: Any) -> None:
    """TRL casts every trainable parameter of a 4-bit model to bf16 (QLoRA's adapter dtype);
    the classification head is a plain Linear fed fp32 hidden states, so it must stay fp32."""
    import torch

    for name, param in model.named_parameters():
        if param.requires_grad and "lora_" not in name and param.dtype == torch.bfloat16:
            param.data = param.data.float()


def _pair_accuracy(trainer: Any, pairs: Any, split: str) -> dict[str, float]:
    """Loss, pair accuracy and reward margin on `pairs`, named `{split}_*`. A prefix of its
    own keeps this evaluation out of the per-step metrics events."""
    prefix = "final_eval"
    scores = trainer.evaluate(pairs, metric_key_prefix=prefix)
    renamed = rename_metrics({k.replace(prefix, "eval", 1): v for k, v in scores.items()})
    return {k.replace("valid_", f"{split}_", 1): v for k, v in renamed.items()}


def run(ctx: TrainingContext) -> TrainingResult:
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    spec = ctx.spec
    block = spec.method.reward_model  # type: ignore[union-attr]
    hp = resolve_preference(
        "reward_model",
        block.hyperparameters,
        len(ctx.train_examples),
        spec.adapter.type,
        ctx.seed,
    )
    set_seed(hp["seed"])  # the new head and the adapter are random: seed before loading
    model, tokenizer = load_for_training(
        ctx.base_model_path, spec.adapter, task="seq_cls", num_labels=1, device=ctx.device
    )
    train, valid = preference_dataset(ctx.train_examples), preference_dataset(ctx.valid_examples)
    hp = with_schedule(hp, valid is not None)
    config = RewardConfig(
        **epoch_args(ctx, hp),
        max_length=hp["max_seq_length"],
        center_rewards_coefficient=hp["center_rewards_coefficient"],
    )
    trainer, log, plan = preference_trainer(
        RewardTrainer, config, ctx, hp, model, tokenizer, (train, valid)
    )
    _keep_head_fp32(model)
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise SpecError(
            f"no training pair fits max_seq_length={hp['max_seq_length']} tokens",
            param=f"{HP}.max_seq_length",
        )
    if kept < len(train):
        ctx.reporter.message(
            f"{len(train) - kept} pairs longer than max_seq_length={hp['max_seq_length']} "
            "tokens were left out",
            level="warn",
        )
    ctx.reporter.message(
        f"Training a reward model ({spec.adapter.type}) on {kept} preference pairs, "
        f"{hp['n_epochs']} epochs"
        + (f", resuming from {ctx.resume_from.name}" if ctx.resume_from else ""),
        data={"hyperparameters": hp},
    )
    train_or_resume(trainer, ctx)
    final: dict[str, Any] = {}
    if not log.cancelled:  # on held-out pairs; without any, (labelled so) on the training ones
        split = "valid" if valid is not None else "train"
        final = _pair_accuracy(trainer, valid if valid is not None else train, split)
        ctx.reporter.message(
            f"Pair accuracy on the {'validation' if valid is not None else 'training'} pairs: "
            f"{final.get(f'{split}_pair_accuracy', float('nan')):.3f}",
            data=final,
        )
    return finish(
        ctx,
        model,
        tokenizer,
        hyperparameters=plan.hp,  # the intervals in steps, as the job object reports them
        history=log.history,
        trained_tokens=trained_tokens(trainer),
        stopped_early=log.cancelled,
        final=final,
        model_task="reward_model",
    )
