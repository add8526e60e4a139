"""Supervised fine-tuning (SFT) of a causal LM on chat, prompt/completion or plain text.

Recipe: resolve hyperparameters → load model with its adapter → tokenize with the model's
own chat template (loss on trained assistant tokens only) → train with TRL's SFTTrainer
(padding-free packing: no FLOPs spent on padding) → save the artifact.
"""

from __future__ import annotations

from typing import Any

from core.adapters import load_for_training, make_optimizer, save_artifact
from core.methods.base import TrainingContext, TrainingResult
from core.training.auto import resolve
from core.training.callbacks import ReporterCallback
from core.training.tokenize import tokenize_example


def _dataset(tokenizer: Any, examples: list, max_len: int):
    from datasets import Dataset

    rows = [tokenize_example(tokenizer, ex, max_len) for ex in examples]
    rows = [r for r in rows if r.n_trained > 0]  # fully truncated prompts teach nothing
    data = Dataset.from_dict(
        {"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]}
    )
    return data, sum(len(r.input_ids) for r in rows), sum(r.truncated for r in rows)


def _config(ctx: TrainingContext, hp: dict[str, Any], has_eval: bool):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(ctx.work_dir / "trainer"),
        num_train_epochs=hp["n_epochs"],
        per_device_train_batch_size=hp["batch_size"],
        per_device_eval_batch_size=hp["batch_size"],
        gradient_accumulation_steps=hp["gradient_accumulation_steps"],
        learning_rate=hp["learning_rate"],
        lr_scheduler_type=hp["lr_scheduler"],
        warmup_steps=hp["warmup_ratio"],
        weight_decay=hp["weight_decay"],
        max_length=hp["max_seq_length"],
        packing=hp["packing"],
        padding_free=True,
        seed=hp["seed"],
        data_seed=hp["seed"],
        logging_steps=1,
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=ctx.device == "cpu",
        dataloader_pin_memory=False,
    )


def run(ctx: TrainingContext) -> TrainingResult:
    from trl import SFTTrainer

    spec = ctx.spec
    hp = resolve(
        spec.method.supervised.hyperparameters,  # type: ignore[union-attr]
        len(ctx.train_examples),
        spec.adapter.type,
        ctx.seed,
    )
    model, tokenizer = load_for_training(ctx.base_model_path, spec.adapter, device=ctx.device)
    train, n_tokens, n_truncated = _dataset(tokenizer, ctx.train_examples, hp["max_seq_length"])
    valid = _dataset(tokenizer, ctx.valid_examples, hp["max_seq_length"])[0] if ctx.valid_examples else None
    if n_truncated:
        ctx.reporter.message(
            f"{n_truncated} examples were truncated to max_seq_length={hp['max_seq_length']}",
            level="warn",
        )
    ctx.reporter.message(
        f"Training {spec.adapter.type} on {len(train)} examples ({n_tokens} tokens), "
        f"{hp['n_epochs']} epochs",
        data={"hyperparameters": hp},
    )
    callback = ReporterCallback(ctx.reporter)
    optimizer = make_optimizer(model, spec.adapter, hp["learning_rate"], hp["weight_decay"])
    trainer = SFTTrainer(
        model=model,
        args=_config(ctx, hp, valid is not None),
        train_dataset=train,
        eval_dataset=valid,
        processing_class=tokenizer,
        callbacks=[callback],
        optimizers=(optimizer, None),
    )
    trainer.train()
    final = trainer.evaluate() if valid is not None and not callback.cancelled else {}
    manifest = save_artifact(model, tokenizer, spec.adapter, ctx.output_dir)
    return TrainingResult(
        artifact_dir=ctx.output_dir,
        adapter_type=spec.adapter.type,
        trained_tokens=n_tokens * hp["n_epochs"],
        hyperparameters=hp,
        history=callback.history,
        final_metrics={**{k.replace("eval_", "valid_"): v for k, v in final.items()}, **manifest},
        stopped_early=callback.cancelled,
    )
