"""Supervised fine-tuning (SFT) of a causal LM on chat, prompt/completion or plain text.

Recipe: resolve hyperparameters → seed → load the model with its adapter (or the parent's, for
an `ft:` model) → tokenize with the model's own chat template (loss on trained assistant
tokens only) → evaluate the untuned base → train with TRL's SFTTrainer (padding-free packing:
no FLOPs spent on padding), evaluating, checkpointing and early-stopping on the schedule the
hyperparameters set → evaluate the tuned model the same way → save the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.adapters import make_optimizer, save_artifact
from core.adapters.peft_setup import SOFT_PROMPTS
from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.methods.base import finish
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
    """The recipe, top to bottom; each step is a function below."""
    from transformers import set_seed

    hp = _hyperparameters(ctx)
    set_seed(hp["seed"])  # adapter initialisation draws random numbers: seed before loading
    model, tokenizer = _load_model(ctx, hp)
    data = _prepare_data(ctx, tokenizer, hp)
    trainer, log, schedule = _build_trainer(ctx, hp, model, tokenizer, data)
    scores = _Scores(ctx, hp, trainer, model, tokenizer, data)
    scores.before_training()
    trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    if not log.cancelled:
        scores.after_training()
    final: dict[str, Any] = dict(scores.tuned or {})
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
        evaluation=scores.job_evaluation(),
    )


def _hyperparameters(ctx: TrainingContext) -> dict[str, Any]:
    """The job's hyperparameters with every "auto" resolved for this data and device."""
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
    return hp


def _load_model(ctx: TrainingContext, hp: dict[str, Any]) -> tuple[Any, Any]:
    """The model with its adapter (or the `ft:` parent's), and its tokenizer."""
    adapter = ctx.spec.adapter.type
    model, tokenizer = load_model(
        ctx,
        # a frozen base may sit in bf16; full fine-tuning keeps fp32 master weights (autocast)
        bf16=hp["mixed_precision"] == "bf16" and adapter != "full",
        gradient_checkpointing=hp["gradient_checkpointing"],
    )
    if ctx.device == "cpu" and adapter not in SOFT_PROMPTS:  # padding-free rows
        use_packed_attention(model)
    return model, tokenizer


@dataclass
class _Data:
    train: Any
    valid: Any | None
    test: Any | None
    n_tokens: int


def _prepare_data(ctx: TrainingContext, tokenizer: Any, hp: dict[str, Any]) -> _Data:
    """Tokenized splits (None where empty), saying what truncation cost."""
    max_len = hp["max_seq_length"]
    train, n_tokens, n_truncated, n_dropped = _dataset(tokenizer, ctx.train_examples, max_len)
    valid = _dataset(tokenizer, ctx.valid_examples, max_len, "validation_file")[0]
    test = _dataset(tokenizer, ctx.test_examples, max_len)[0]  # never trained on
    if ctx.test_examples and not len(test):
        ctx.reporter.message(
            f"No test evaluation: max_seq_length={max_len} cuts every test example before its "
            "first trained token",
            level="warn",
        )
    if not len(train):
        raise SpecError(
            f"max_seq_length={max_len} cuts every training example before its first trained token",
            param="method.supervised.hyperparameters.max_seq_length",
        )
    if n_truncated:
        ctx.reporter.message(
            f"{n_truncated} training examples were truncated to max_seq_length={max_len}"
            + (f"; {n_dropped} kept no trained token and were skipped" if n_dropped else ""),
            level="warn",
            data={"truncated": n_truncated, "skipped": n_dropped},
        )
    ctx.reporter.message(
        f"Training {ctx.spec.adapter.type} on {len(train)} examples ({n_tokens} tokens), "
        f"{hp['n_epochs']} epochs"
        + (f", resuming from {ctx.resume_from.name}" if ctx.resume_from else ""),
        data={"hyperparameters": hp},
    )
    return _Data(train, valid if len(valid) else None, test if len(test) else None, n_tokens)


def _build_trainer(
    ctx: TrainingContext, hp: dict[str, Any], model: Any, tokenizer: Any, data: _Data
) -> tuple[Any, ReporterCallback, ScheduleCallback]:
    """TRL's SFTTrainer, reporting every step and evaluating/saving on the job's schedule."""
    from trl import SFTTrainer

    log = ReporterCallback(ctx.reporter)
    schedule = ScheduleCallback(
        hp, ctx.reporter, log, lambda out: save_artifact(model, tokenizer, ctx.spec.adapter, out)
    )
    spread = strategy_args(ctx, model)  # {} on one device
    optimizer = make_optimizer(model, ctx.spec.adapter, hp["learning_rate"], hp["weight_decay"])
    trainer = SFTTrainer(
        model=model,
        args=trainer_config(ctx, hp, **spread),
        train_dataset=data.train,
        eval_dataset=data.valid,
        processing_class=tokenizer,
        callbacks=[log, schedule],
        optimizers=fsdp_optimizers(spread, optimizer),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    return trainer, log, schedule


class _Scores:
    """Validation and test scores of the starting point (the untuned base, or the `ft:` parent
    as loaded) and of the tuned model, measured the same way; test only before and after."""

    def __init__(self, ctx, hp, trainer, model, tokenizer, data: _Data) -> None:
        self.metrics = hp["evaluation_metrics"]
        self.run = lambda pairs, **kw: evaluate(
            trainer, model, tokenizer, pairs, self.metrics, **kw
        )
        self.data = data
        self.pairs = generation_pairs(ctx.valid_examples) if self.metrics else []
        with_test = self.metrics and data.test is not None
        self.test_pairs = generation_pairs(ctx.test_examples) if with_test else []
        self.start = ctx.parent_artifact_dir is None
        self.base: dict | None = None
        self.tuned: dict | None = None
        self.test: dict[str, dict[str, float]] = {}

    def before_training(self) -> None:
        if self.data.valid is not None:
            self.base = self.run(self.pairs, base=self.start)
        if self.data.test is not None:
            self.test["base"] = self._test(base=self.start)

    def after_training(self) -> None:
        if self.data.valid is not None:
            self.tuned = self.run(self.pairs, base=False)
        if self.data.test is not None:
            self.test["tuned"] = self._test(base=False)

    def _test(self, base: bool) -> dict[str, float]:
        return self.run(self.test_pairs, base=base, dataset=self.data.test, prefix="test")

    def run(self, pairs: list, **kw: Any) -> dict[str, float]:
        return evaluate(*self.trained, pairs, self.metrics, **kw)

    def job_evaluation(self) -> dict | None:
        valid = None
        if self.base is not None and self.tuned is not None:
            valid = {
                "base": self.base,
                "tuned": self.tuned,
                "valid_examples": len(self.data.valid),  # type: ignore[arg-type]
                "generation_examples": len(self.pairs),
            }
        test = None
        if "tuned" in self.test:
            test = {
                **self.test,
                "examples": len(self.data.test),  # type: ignore[arg-type]
                "generation_examples": len(self.test_pairs),
            }
        return job_evaluation(valid, test)
