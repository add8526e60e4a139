"""Direct Preference Optimization (Rafailov et al. 2023, https://arxiv.org/abs/2305.18290).

DPO trains the policy straight from preference pairs, with no reward model and no sampling:
its loss raises the policy's log-probability margin of chosen over rejected completions,
measured against a frozen reference (the starting model), scaled by `beta`.

Recipe: resolve hyperparameters → seed → load the policy with its adapter → pairs in TRL's
conversational format (each rendered by the model's own chat template) → train with TRL's
DPOTrainer, validating each epoch and checkpointing on the schedule supervised jobs use
(core.training.schedule; a pause checkpoints the current step, a re-run resumes from the
latest). Its reference is the starting policy: for an adapter, a frozen copy of the (freshly
initialised, seeded, so a resumed run rebuilds the same one) adapter on the same base; for
full weights, a second copy loaded from the same directory → save the artifact without the
reference.
"""

from __future__ import annotations

from core.adapters import load_for_training
from core.jobspec.recipe import TrainingContext, TrainingResult
from core.methods.base import finish
from core.training.auto import resolve_preference
from core.training.callbacks import rename_metrics
from core.training.rlhf_data import preference_dataset
from core.training.trl_args import (
    drop_reference_adapter,
    epoch_args,
    preference_trainer,
    train_or_resume,
    trained_tokens,
    with_schedule,
)


def run(ctx: TrainingContext) -> TrainingResult:
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    spec = ctx.spec
    hp = resolve_preference(
        "dpo",
        spec.method.dpo.hyperparameters,  # type: ignore[union-attr]
        len(ctx.train_examples),
        spec.adapter.type,
        ctx.seed,
    )
    set_seed(hp["seed"])  # adapter initialisation draws random numbers: seed before loading
    model, tokenizer = load_for_training(ctx.base_model_path, spec.adapter, device=ctx.device)
    train, valid = preference_dataset(ctx.train_examples), preference_dataset(ctx.valid_examples)
    hp = with_schedule(hp, valid is not None)
    ctx.reporter.message(
        f"Training DPO ({spec.adapter.type}, beta={hp['beta']}) on {len(train)} preference "
        f"pairs, {hp['n_epochs']} epochs"
        + (f", resuming from {ctx.resume_from.name}" if ctx.resume_from else ""),
        data={"hyperparameters": hp},
    )
    config = DPOConfig(
        **epoch_args(ctx, hp),
        beta=hp["beta"],
        loss_type=[hp["loss_type"]],
        label_smoothing=hp["label_smoothing"],
        max_length=hp["max_seq_length"],
    )
    trainer, log, plan = preference_trainer(
        DPOTrainer, config, ctx, hp, model, tokenizer, (train, valid)
    )
    train_or_resume(trainer, ctx)
    final = trainer.evaluate() if valid is not None and not log.cancelled else {}
    drop_reference_adapter(model)
    return finish(
        ctx,
        model,
        tokenizer,
        hyperparameters=plan.hp,  # the intervals in steps, as the job object reports them
        history=log.history,
        trained_tokens=trained_tokens(trainer),
        stopped_early=log.cancelled,
        final=rename_metrics(final),
    )
