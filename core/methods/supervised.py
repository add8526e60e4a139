"""Supervised fine-tuning (SFT) of a causal LM on chat, prompt/completion or plain text.

Recipe: resolve hyperparameters → seed → load the model with its adapter (or the parent's, for
an `ft:` model) → tokenize with the model's own chat template (loss on trained assistant
tokens only) → evaluate the untuned base → train with TRL's SFTTrainer (padding-free packing:
no FLOPs spent on padding), evaluating, checkpointing and early-stopping on the schedule the
hyperparameters set → evaluate the tuned model the same way → save the artifact.
"""

from __future__ import annotations

from typing import Any

from core.adapters import make_optimizer, save_artifact
from core.adapters.peft_setup import SOFT_PROMPTS
from core.methods.base import finish
from core.spec.recipe import SpecError, TrainingContext, TrainingResult
from core.training.auto import resolve
from core.training.callbacks import ReporterCallback, quiet
from core.training.distributed import batch_args, fsdp_optimizers, strategy_args
from core.training.evaluation import evaluate, generation_pairs, job_evaluation
from core.training.packed_attention import use_packed_attention
from core.training.schedule import ScheduleCallback
from core.training.tokenize import UnfaithfulRender, tokenize_example
from core.training.warm_start import load_model


def _dataset(tokenizer: Any, examples: list, max_len: int, param: str = "training_file"):
    from datasets import Dataset

    try:
        tokenized = [tokenize_example(tokenizer, ex, max_len) for ex in examples]
    except UnfaithfulRender as exc:  # the file is valid, but not for this base model
        raise SpecError(f"{param}: {exc}", param=param, code=f"invalid_{param}") from exc
    rows = [r for r in tokenized if r.n_trained > 0]  # fully truncated prompts teach nothing
    data = Dataset.from_dict(
        {"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]}
    )
    truncated = sum(r.truncated for r in tokenized)
    return data, sum(len(r.input_ids) for r in rows), truncated, len(tokenized) - len(rows)


def trainer_config(
    ctx: TrainingContext, hp: dict[str, Any], config_class: Any = None, **overrides: Any
):
    """The trainer arguments `hp` stand for: an SFTConfig, or a subclass of it (distillation's
    GKDConfig) with `overrides` on top."""
    from trl import SFTConfig

    args = dict(
        output_dir=str(ctx.work_dir / "trainer"),
        num_train_epochs=hp["n_epochs"],
        **batch_args(hp),  # per device: the user's batch whatever the number of devices
        learning_rate=hp["learning_rate"],
        lr_scheduler_type=hp["lr_scheduler"],
        warmup_steps=hp["warmup_ratio"],  # transformers 5: a value below 1 is a ratio
        weight_decay=hp["weight_decay"],
        # Examples are truncated when tokenized; packing fills rows up to max_length.
        max_length=hp["max_seq_length"] if hp["packing"] else None,
        packing=hp["packing"],
        padding_free=ctx.spec.adapter.type not in SOFT_PROMPTS,  # a soft prompt starts each row
        seed=hp["seed"],
        data_seed=hp["seed"],
        # SFTConfig defaults both to True; precision and checkpointing are the job's choice.
        bf16=hp["mixed_precision"] == "bf16",
        fp16=hp["mixed_precision"] == "fp16",
        activation_checkpointing=False,  # enabled on the model by load_for_training instead
        logging_steps=1,
        eval_strategy="no",  # ScheduleCallback decides when to evaluate and save
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=ctx.device == "cpu",
        dataloader_pin_memory=False,
    )
    return (config_class or SFTConfig)(**{**args, **overrides})


def run(ctx: TrainingContext) -> TrainingResult:
    from transformers import set_seed
    from trl import SFTTrainer

    spec = ctx.spec
    hp = resolve(
        spec.method.supervised.hyperparameters,  # type: ignore[union-attr]
        len(ctx.train_examples),
        spec.adapter.type,
        ctx.seed,
        device=ctx.device,
        has_validation=bool(ctx.valid_examples),
    )
    if spec.adapter.type in SOFT_PROMPTS:  # one example per row (see SOFT_PROMPTS)
        if spec.method.supervised.hyperparameters.packing is True:  # type: ignore[union-attr]
            raise SpecError(
                f"packing cannot be used with {spec.adapter.type}: the soft prompt is "
                "prepended to each row, so packed examples after the first would not see it",
                param="method.supervised.hyperparameters.packing",
            )
        hp["packing"] = False
    set_seed(hp["seed"])  # adapter initialisation draws random numbers: seed before loading
    model, tokenizer = load_model(
        ctx,
        # a frozen base may sit in bf16; full fine-tuning keeps fp32 master weights (autocast)
        bf16=hp["mixed_precision"] == "bf16" and spec.adapter.type != "full",
        gradient_checkpointing=hp["gradient_checkpointing"],
    )
    if ctx.device == "cpu" and spec.adapter.type not in SOFT_PROMPTS:  # padding-free rows
        use_packed_attention(model)
    train, n_tokens, n_truncated, n_dropped = _dataset(
        tokenizer, ctx.train_examples, hp["max_seq_length"]
    )
    valid = _dataset(tokenizer, ctx.valid_examples, hp["max_seq_length"], "validation_file")[0]
    valid = valid if len(valid) else None
    test = _dataset(tokenizer, ctx.test_examples, hp["max_seq_length"])[0]  # never trained on
    test = test if len(test) else None
    if ctx.test_examples and test is None:
        ctx.reporter.message(
            f"No test evaluation: max_seq_length={hp['max_seq_length']} cuts every test "
            "example before its first trained token",
            level="warn",
        )
    if not len(train):
        raise SpecError(
            f"max_seq_length={hp['max_seq_length']} cuts every training example before its "
            "first trained token",
            param="method.supervised.hyperparameters.max_seq_length",
        )
    if n_truncated:
        ctx.reporter.message(
            f"{n_truncated} training examples were truncated to max_seq_length="
            f"{hp['max_seq_length']}"
            + (f"; {n_dropped} kept no trained token and were skipped" if n_dropped else ""),
            level="warn",
            data={"truncated": n_truncated, "skipped": n_dropped},
        )
    ctx.reporter.message(
        f"Training {spec.adapter.type} on {len(train)} examples ({n_tokens} tokens), "
        f"{hp['n_epochs']} epochs"
        + (f", resuming from {ctx.resume_from.name}" if ctx.resume_from else ""),
        data={"hyperparameters": hp},
    )
    log = ReporterCallback(ctx.reporter)
    schedule = ScheduleCallback(
        hp, ctx.reporter, log, lambda out: save_artifact(model, tokenizer, spec.adapter, out)
    )
    spread = strategy_args(ctx, model)  # {} on one device
    optimizer = make_optimizer(model, spec.adapter, hp["learning_rate"], hp["weight_decay"])
    trainer = SFTTrainer(
        model=model,
        args=trainer_config(ctx, hp, **spread),
        train_dataset=train,
        eval_dataset=valid,
        processing_class=tokenizer,
        callbacks=[log, schedule],
        optimizers=fsdp_optimizers(spread, optimizer),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    pairs = generation_pairs(ctx.valid_examples) if hp["evaluation_metrics"] else []
    metrics = hp["evaluation_metrics"]
    base = tuned = None
    # The starting point: the untuned base, or the `ft:` parent as loaded.
    start = ctx.parent_artifact_dir is None
    if valid is not None:
        base = evaluate(trainer, model, tokenizer, pairs, metrics, base=start)
    test_pairs = generation_pairs(ctx.test_examples) if metrics and test is not None else []
    test_scores: dict[str, dict[str, float]] = {}  # like validation, but before and after only
    if test is not None:
        test_scores["base"] = evaluate(
            trainer, model, tokenizer, test_pairs, metrics, base=start, dataset=test, prefix="test"
        )
    trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    if valid is not None and not log.cancelled:
        tuned = evaluate(trainer, model, tokenizer, pairs, metrics, base=False)
    if test is not None and not log.cancelled:
        test_scores["tuned"] = evaluate(
            trainer, model, tokenizer, test_pairs, metrics, base=False, dataset=test, prefix="test"
        )
    final: dict[str, Any] = dict(tuned or {})
    if schedule.stopped_at is not None:
        final["early_stopped_at_step"] = schedule.stopped_at
    return finish(
        ctx,
        model,
        tokenizer,
        hyperparameters=schedule.hp,
        history=log.history,
        trained_tokens=n_tokens * (trainer.state.epoch or 0),
        stopped_early=log.cancelled,
        final=final,
        evaluation=job_evaluation(
            None
            if base is None or tuned is None
            else {
                "base": base,
                "tuned": tuned,
                "valid_examples": len(valid),  # type: ignore[arg-type]
                "generation_examples": len(pairs),
            },
            None
            if "tuned" not in test_scores
            else {
                **test_scores,
                "examples": len(test),  # type: ignore[arg-type]
                "generation_examples": len(test_pairs),
            },
        ),
    )
