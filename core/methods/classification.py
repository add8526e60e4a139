"""Sequence classification of `{"text", "label"}` rows with an encoder (e.g. a BERT) + adapter.

Recipe: resolve hyperparameters (the supervised rules; see core.training.auto) → map the
training labels to class ids → load the base as AutoModelForSequenceClassification with the
adapter (LoRA by default; the fresh classifier head always trains), or the `ft:` classifier
the job continues → tokenize (text, optional
text_pair) → evaluate the untuned base → train with transformers' Trainer, on the same
evaluation / checkpoint / early-stopping schedule as supervised jobs → evaluate the tuned
model → save the artifact, whose manifest lists the labels in class-id order.

Validation metrics: loss, accuracy and macro-F1 (the unweighted mean of the per-class F1, so
a rare class counts as much as a common one).
"""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from typing import Any

from core.adapters import make_optimizer, read_manifest, save_artifact
from core.data.examples import LabeledText
from core.evaluation import fairness
from core.evaluation.metrics import classification_metrics
from core.inference.classifier import max_input_length
from core.methods.base import finish
from core.spec.recipe import SpecError, TrainingContext, TrainingResult
from core.training.auto import resolve
from core.training.callbacks import ReporterCallback, quiet, rename_metrics
from core.training.distributed import batch_args, fsdp_optimizers, strategy_args
from core.training.evaluation import base_weights, job_evaluation
from core.training.schedule import ScheduleCallback
from core.training.trl_args import common_args
from core.training.warm_start import load_model

HP = "method.classification.hyperparameters"


def label_order(labels: list[str]) -> list[str]:
    """Class ids in a stable order: numerically for integer labels ("2" before "10"), else
    alphabetically."""

    def key(label: str) -> tuple[int, int, str]:
        numeric = label.lstrip("-").isdigit()
        return (0, int(label), "") if numeric else (1, 0, label)

    return sorted(set(labels), key=key)


def _labels(ctx: TrainingContext) -> list[str]:
    """The class names in id order: the training data's, or those of the classifier the job
    continues (its head's rows keep their meaning; the data may use a subset of them)."""
    labels = label_order([ex.label for ex in ctx.train_examples])
    if ctx.parent_artifact_dir is None:
        return labels
    parent = read_manifest(ctx.parent_artifact_dir)
    if parent.get("task") != "seq_cls" or not parent.get("labels"):
        raise SpecError(f"{ctx.spec.model} is not a classification model", param="model")
    extra = sorted(set(labels) - set(parent["labels"]))
    if extra:
        raise SpecError(
            f"labels {extra[:5]} are not among {ctx.spec.model}'s labels {parent['labels']}",
            param="training_file",
        )
    return list(parent["labels"])


def _dataset(tokenizer: Any, examples: list[LabeledText], label_ids: dict[str, int], max_len: int):
    from datasets import Dataset

    texts = [ex.text for ex in examples]
    pairs = [ex.text_pair for ex in examples]
    enc = tokenizer(
        texts,
        pairs if any(p is not None for p in pairs) else None,
        truncation=True,
        max_length=max_len,
    )
    return Dataset.from_dict({**enc, "labels": [label_ids[ex.label] for ex in examples]})


def _args(ctx: TrainingContext, hp: dict[str, Any], spread: dict[str, Any]):
    from transformers import TrainingArguments

    return TrainingArguments(
        **{
            **common_args(ctx, hp),
            "num_train_epochs": hp["n_epochs"],
            **batch_args(hp),  # per device: the user's batch whatever the number of devices
            "per_device_eval_batch_size": max(hp["batch_size"], 32),
            "lr_scheduler_type": hp["lr_scheduler"],
            "warmup_steps": hp["warmup_ratio"],  # transformers 5: a value below 1 is a ratio
            "weight_decay": hp["weight_decay"],
            "bf16": hp["mixed_precision"] == "bf16",
            "fp16": hp["mixed_precision"] == "fp16",
            "eval_strategy": "no",  # ScheduleCallback decides when to evaluate and save
            # One loss term per example: across devices each rank's mean, averaged by DDP, is
            # the batch's mean. (Token averaging would scale it by the world size: the
            # classifier's loss ignores the token count transformers passes.)
            "average_tokens_across_devices": False,
            **spread,
        }
    )


def _validation(trainer: Any, test: Any = None) -> dict[str, float]:
    """valid_loss, valid_accuracy, valid_macro_f1; with `test`, the same on it as test_*."""
    scores = rename_metrics(trainer.evaluate(eval_dataset=test))
    prefix = "valid_" if test is None else "test_"
    return {prefix + k[6:]: v for k, v in scores.items() if k.startswith("valid_")}


def run(ctx: TrainingContext) -> TrainingResult:
    import numpy as np
    from transformers import DataCollatorWithPadding, Trainer, set_seed

    spec = ctx.spec
    hp = resolve(
        spec.method.classification.hyperparameters,  # type: ignore[union-attr]
        len(ctx.train_examples),
        spec.adapter.type,
        ctx.seed,
        device=ctx.device,
        has_validation=bool(ctx.valid_examples),
    )
    hp["packing"] = False  # one text per row
    labels = _labels(ctx)
    unseen = sorted({ex.label for ex in ctx.valid_examples} - set(labels))
    if unseen:
        raise SpecError(
            f"validation labels {unseen[:5]} never occur in the training data",
            param="validation_file",
        )
    unseen = sorted({ex.label for ex in ctx.test_examples} - set(labels))
    if unseen:
        raise SpecError(
            f"test split labels {unseen[:5]} never occur in the rest of the training data",
            param="data.test_split",
        )
    label_ids = {label: i for i, label in enumerate(labels)}
    train_rows = ctx.train_examples
    if spec.data.reweight_groups:  # group and label independent in what is trained on
        train_rows = fairness.reweighed(train_rows, hp["seed"])
        counts = Counter((ex.group, ex.label) for ex in train_rows)
        ctx.reporter.message(
            "Reweighted the training rows by group and label: "
            + ", ".join(f"{g}/{y} {n}" for (g, y), n in sorted(counts.items(), key=str)),
            data={"reweighted": [[g, y, n] for (g, y), n in sorted(counts.items(), key=str)]},
        )
    set_seed(hp["seed"])  # the classifier head and adapter initialise from the seed
    model, tokenizer = load_model(  # the base, or the `ft:` classifier this job continues
        ctx,
        task="seq_cls",
        num_labels=len(labels),
        bf16=hp["mixed_precision"] == "bf16" and spec.adapter.type != "full",
        gradient_checkpointing=hp["gradient_checkpointing"],
    )
    model.config.id2label = dict(enumerate(labels))  # saved with the artifact
    model.config.label2id = label_ids
    max_len = min(hp["max_seq_length"], max_input_length(model, tokenizer))
    train = _dataset(tokenizer, train_rows, label_ids, max_len)
    valid = (
        _dataset(tokenizer, ctx.valid_examples, label_ids, max_len) if ctx.valid_examples else None
    )
    test = (  # never trained on: scored before and after training only
        _dataset(tokenizer, ctx.test_examples, label_ids, max_len) if ctx.test_examples else None
    )
    n_tokens = sum(len(ids) for ids in train["input_ids"])
    ctx.reporter.message(
        f"Training {spec.adapter.type} classification into {len(labels)} classes on "
        f"{len(train)} examples ({n_tokens} tokens), {hp['n_epochs']} epochs",
        data={"hyperparameters": hp, "labels": labels},
    )

    def compute_metrics(prediction: Any) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).argmax(-1).tolist()
        return classification_metrics(predicted, prediction.label_ids.tolist(), len(labels))

    log = ReporterCallback(ctx.reporter)
    schedule = ScheduleCallback(
        hp, ctx.reporter, log, lambda out: save_artifact(model, tokenizer, spec.adapter, out)
    )
    spread = strategy_args(ctx, model)  # {} on one device
    trainer = Trainer(
        model=model,
        args=_args(ctx, hp, spread),
        train_dataset=train,
        eval_dataset=valid,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[log, schedule],
        optimizers=fsdp_optimizers(
            spread, make_optimizer(model, spec.adapter, hp["learning_rate"], hp["weight_decay"])
        ),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    base = tuned = None
    test_scores: dict[str, dict[str, float]] = {}
    # The fairness report (rows with a `group`): on the test split if any, else validation.
    split, rows, fair_set = (
        ("test", ctx.test_examples, test)
        if test is not None
        else ("validation", ctx.valid_examples, valid)
    )
    fair: dict[str, Any] = {}
    # The untuned base (adapter off, fresh head), or the `ft:` parent.
    with base_weights(model) if ctx.parent_artifact_dir is None else nullcontext():
        if valid is not None:
            base = _validation(trainer)
        if test is not None:
            test_scores["base"] = _validation(trainer, test)
        fair["base"] = fairness.trainer_report(trainer, fair_set, rows, len(labels))
    trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    if valid is not None and not log.cancelled:
        tuned = _validation(trainer)
    if test is not None and not log.cancelled:
        test_scores["tuned"] = _validation(trainer, test)
    if not log.cancelled:
        fair["tuned"] = fairness.trainer_report(trainer, fair_set, rows, len(labels))
    fair_report = fairness.job_fairness(fair.get("base"), fair.get("tuned"), split)
    if fair_report is not None:
        ctx.reporter.message(fairness.message(fair_report), data={"fairness": fair_report})
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
        model_task="classification",
        evaluation=_with_fairness(
            job_evaluation(
                None
                if base is None or tuned is None
                else {
                    "base": base,
                    "tuned": tuned,
                    "valid_examples": len(valid),  # type: ignore[arg-type]
                },
                {**test_scores, "examples": len(test or [])} if "tuned" in test_scores else None,
            ),
            fair_report,
        ),
    )


def _with_fairness(evaluation: dict | None, fair: dict | None) -> dict | None:
    return evaluation if fair is None else {**(evaluation or {}), "fairness": fair}
