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
from dataclasses import dataclass
from typing import Any

from core.adapters import make_optimizer, read_manifest, save_artifact
from core.data.examples import LabeledText
from core.evaluation import fairness
from core.evaluation.metrics import classification_metrics
from core.inference.classifier import max_input_length
from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.methods.base import finish
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
    """The recipe, top to bottom; each step is a function below."""
    from transformers import set_seed

    hp = _hyperparameters(ctx)
    labels = _labels(ctx)
    _check_labels(ctx, labels)
    train_rows = _training_rows(ctx, hp)
    set_seed(hp["seed"])  # the classifier head and adapter initialise from the seed
    model, tokenizer = _load_model(ctx, hp, labels)
    data = _prepare_data(ctx, hp, model, tokenizer, train_rows, labels)
    trainer, log, schedule = _build_trainer(ctx, hp, model, tokenizer, data, len(labels))
    scores = _Scores(ctx, trainer, data, len(labels))
    # The untuned base (adapter off, fresh head), or the `ft:` parent.
    with base_weights(model) if ctx.parent_artifact_dir is None else nullcontext():
        scores.measure("base")
    trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    if not log.cancelled:
        scores.measure("tuned")
    final: dict[str, Any] = dict(scores.valid.get("tuned") or {})
    if schedule.stopped_at is not None:
        final["early_stopped_at_step"] = schedule.stopped_at
    return finish(
        ctx,
        model,
        tokenizer,
        hyperparameters=schedule.hp,
        history=log.history,
        trained_tokens=data.n_tokens * (trainer.state.epoch or 0),
        stopped_early=log.cancelled,
        final=final,
        model_task="classification",
        evaluation=scores.job_evaluation(),
    )


def _hyperparameters(ctx: TrainingContext) -> dict[str, Any]:
    hp = resolve(
        ctx.spec.method.classification.hyperparameters,  # type: ignore[union-attr]
        len(ctx.train_examples),
        ctx.spec.adapter.type,
        ctx.seed,
        device=ctx.device,
        has_validation=bool(ctx.valid_examples),
    )
    hp["packing"] = False  # one text per row
    return hp


def _check_labels(ctx: TrainingContext, labels: list[str]) -> None:
    """Every label scored on must have been trained on."""
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


def _training_rows(ctx: TrainingContext, hp: dict[str, Any]) -> list:
    """The training examples, reweighed so group and label are independent when asked."""
    if not ctx.spec.data.reweight_groups:
        return ctx.train_examples
    rows = fairness.reweighed(ctx.train_examples, hp["seed"])
    counts = sorted(Counter((ex.group, ex.label) for ex in rows).items(), key=str)
    ctx.reporter.message(
        "Reweighted the training rows by group and label: "
        + ", ".join(f"{g}/{y} {n}" for (g, y), n in counts),
        data={"reweighted": [[g, y, n] for (g, y), n in counts]},
    )
    return rows


def _load_model(ctx: TrainingContext, hp: dict[str, Any], labels: list[str]) -> tuple[Any, Any]:
    """The base with a fresh head, or the `ft:` classifier this job continues."""
    model, tokenizer = load_model(
        ctx,
        task="seq_cls",
        num_labels=len(labels),
        bf16=hp["mixed_precision"] == "bf16" and ctx.spec.adapter.type != "full",
        gradient_checkpointing=hp["gradient_checkpointing"],
    )
    model.config.id2label = dict(enumerate(labels))  # saved with the artifact
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    return model, tokenizer


@dataclass
class _Data:
    train: Any
    valid: Any | None
    test: Any | None  # never trained on: scored before and after training only
    n_tokens: int


def _prepare_data(ctx, hp, model, tokenizer, train_rows: list, labels: list[str]) -> _Data:
    label_ids = model.config.label2id
    max_len = min(hp["max_seq_length"], max_input_length(model, tokenizer))

    def tokenized(rows: list) -> Any:
        return _dataset(tokenizer, rows, label_ids, max_len) if rows else None

    train = _dataset(tokenizer, train_rows, label_ids, max_len)
    n_tokens = sum(len(ids) for ids in train["input_ids"])
    ctx.reporter.message(
        f"Training {ctx.spec.adapter.type} classification into {len(labels)} classes on "
        f"{len(train)} examples ({n_tokens} tokens), {hp['n_epochs']} epochs",
        data={"hyperparameters": hp, "labels": labels},
    )
    return _Data(train, tokenized(ctx.valid_examples), tokenized(ctx.test_examples), n_tokens)


def _build_trainer(ctx, hp, model, tokenizer, data: _Data, n_classes: int):
    """transformers' Trainer, reporting every step and evaluating/saving on the schedule."""
    import numpy as np
    from transformers import DataCollatorWithPadding, Trainer

    def compute_metrics(prediction: Any) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).argmax(-1).tolist()
        return classification_metrics(predicted, prediction.label_ids.tolist(), n_classes)

    log = ReporterCallback(ctx.reporter)
    schedule = ScheduleCallback(
        hp, ctx.reporter, log, lambda out: save_artifact(model, tokenizer, ctx.spec.adapter, out)
    )
    spread = strategy_args(ctx, model)  # {} on one device
    optimizer = make_optimizer(model, ctx.spec.adapter, hp["learning_rate"], hp["weight_decay"])
    trainer = Trainer(
        model=model,
        args=_args(ctx, hp, spread),
        train_dataset=data.train,
        eval_dataset=data.valid,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[log, schedule],
        optimizers=fsdp_optimizers(spread, optimizer),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    return trainer, log, schedule


class _Scores:
    """Validation, test and fairness scores of the starting point ("base") and of the tuned
    model ("tuned"). The fairness report (rows with a `group`) reads the test split if any,
    else validation."""

    def __init__(self, ctx: TrainingContext, trainer: Any, data: _Data, n_classes: int) -> None:
        self.ctx, self.trainer, self.data, self.n_classes = ctx, trainer, data, n_classes
        self.valid: dict[str, dict] = {}
        self.test: dict[str, dict[str, float]] = {}
        self.fair: dict[str, Any] = {}
        on_test = data.test is not None
        self.split = "test" if on_test else "validation"
        self.fair_rows = ctx.test_examples if on_test else ctx.valid_examples
        self.fair_set = data.test if on_test else data.valid

    def measure(self, when: str) -> None:
        if self.data.valid is not None:
            self.valid[when] = _validation(self.trainer)
        if self.data.test is not None:
            self.test[when] = _validation(self.trainer, self.data.test)
        self.fair[when] = fairness.trainer_report(
            self.trainer, self.fair_set, self.fair_rows, self.n_classes
        )

    def job_evaluation(self) -> dict | None:
        report = fairness.job_fairness(self.fair.get("base"), self.fair.get("tuned"), self.split)
        if report is not None:
            self.ctx.reporter.message(fairness.message(report), data={"fairness": report})
        valid = None
        if "base" in self.valid and "tuned" in self.valid:
            valid = {**self.valid, "valid_examples": len(self.data.valid)}  # type: ignore[arg-type]
        test = None
        if "tuned" in self.test:
            test = {**self.test, "examples": len(self.data.test or [])}
        return _with_fairness(job_evaluation(valid, test), report)


def _with_fairness(evaluation: dict | None, fair: dict | None) -> dict | None:
    return evaluation if fair is None else {**(evaluation or {}), "fairness": fair}
