"""Knowledge distillation: train the job's model (the student) to match a teacher model.

Modes (core.jobspec.distill): `sequence` fine-tunes the student on the teacher's own answers
to the training prompts (Kim & Rush 2016); `logits` matches the teacher's token distributions
on the training data (Hinton et al. 2015; GKD's generalized JSD with `beta`); `on_policy`
samples completions from the student and has the teacher score every token (GKD, Agarwal et
al. 2024, reverse KL by default). All three run on TRL's GKDTrainer (core.training.distill_trainer).

Recipe: resolve hyperparameters (SFT's `auto` rules) → seed → load the student with its
adapter and the teacher (merged weights, resolved by the runner) → check they share a
tokenizer → (sequence) the teacher answers the training prompts → tokenize as SFT does →
evaluate the student and the teacher on the held-out rows → train, evaluating, checkpointing
and early-stopping on the held-out loss → evaluate the student again → save the artifact.
"""

from __future__ import annotations

from typing import Any

from core.adapters import make_optimizer, save_artifact
from core.jobspec.distill import MODE_ONLY, SUPERVISED_FIELDS, DistillationMethod
from core.jobspec.job import SupervisedHyperparameters
from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.methods.base import finish
from core.methods.supervised import trainer_config
from core.training.auto import resolve
from core.training.callbacks import ReporterCallback, rename_metrics
from core.training.distill_data import Collator, answerable, rows, same_tokenizer, teacher_answers
from core.training.schedule import ScheduleCallback
from core.training.warm_start import load_model

PARAM = "method.distillation"


def resolve_hyperparameters(ctx: TrainingContext, block: DistillationMethod) -> dict[str, Any]:
    """SFT's resolution of the student's knobs, then the divergence's defaults per mode."""
    given = block.hyperparameters
    knobs = SupervisedHyperparameters(
        **{name: getattr(given, name) for name in SUPERVISED_FIELDS}, packing=False
    )
    try:
        hp = resolve(
            knobs,
            len(ctx.train_examples),
            ctx.spec.adapter.type,
            ctx.seed,
            device=ctx.device,
            has_validation=bool(ctx.valid_examples),
        )
    except SpecError as exc:  # the student's knobs sit under method.distillation here
        exc.param = (exc.param or "").replace("method.supervised", PARAM) or None
        raise
    on_policy = block.mode == "on_policy"

    def pick(name: str, default: Any) -> Any:
        value = getattr(given, name)
        return default if value == "auto" else value

    divergence = {
        "beta": pick("beta", 1.0 if on_policy else 0.0),
        "lmbda": pick("lmbda", 1.0 if on_policy else 0.0),
        "temperature": pick("temperature", 0.9),
        "max_new_tokens": pick("max_new_tokens", 128),
    }
    used = {k: v for k, v in divergence.items() if block.mode in MODE_ONLY[k]}
    return {**hp, "mode": block.mode, "teacher": block.teacher, **used}


DEFAULTS = {"beta": 0.0, "lmbda": 0.0, "temperature": 0.9, "max_new_tokens": 128}
"""What GKD is configured with for a knob the mode does not use (and the job does not list:
sequence mode lists only max_new_tokens, the length of the teacher's answers)."""


def _load_teacher(ctx: TrainingContext, tokenizer: Any) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if ctx.teacher_dir is None:
        raise SpecError("the teacher's weights were not resolved", param=f"{PARAM}.teacher")
    if not same_tokenizer(AutoTokenizer.from_pretrained(ctx.teacher_dir), tokenizer):
        raise SpecError(
            f"the teacher {ctx.spec.method.distillation.teacher} does not share the student's "  # type: ignore[union-attr]
            "tokenizer: distillation compares their token distributions id by id",
            param=f"{PARAM}.teacher",
            code="tokenizer_mismatch",
        )
    teacher = AutoModelForCausalLM.from_pretrained(ctx.teacher_dir).to(ctx.device)
    return teacher.eval().requires_grad_(False)


def _training_examples(ctx: TrainingContext, hp: dict[str, Any], teacher: Any, tok: Any) -> list:
    """The data's own answers, or (sequence) the teacher's answers to the same prompts."""
    if hp["mode"] != "sequence":
        return ctx.train_examples
    prompts = answerable(ctx.train_examples)
    if not prompts:
        raise SpecError(
            "sequence distillation needs conversations that end in an assistant answer for "
            "the teacher to replace",
            param="training_file",
        )
    answered = teacher_answers(teacher, tok, prompts, hp["max_new_tokens"])
    ctx.reporter.message(
        f"The teacher answered {len(answered)} training prompts",
        data={"example": answered[0].messages[-1].content},
    )
    return answered


def _dataset(tokenizer: Any, examples: list, max_len: int, what: str, ctx: TrainingContext):
    from datasets import Dataset

    kept, truncated = rows(tokenizer, examples, max_len)
    if truncated:
        ctx.reporter.message(
            f"{truncated} {what} examples were truncated to max_seq_length={max_len}", level="warn"
        )
    return Dataset.from_list(kept) if kept else None


def run(ctx: TrainingContext) -> TrainingResult:
    from transformers import set_seed

    from core.training.distill_eval import held_out_scores
    from core.training.distill_trainer import DistillTrainer, GKDConfig

    spec = ctx.spec
    block: DistillationMethod = spec.method.distillation  # type: ignore[assignment]
    hp = resolve_hyperparameters(ctx, block)
    set_seed(hp["seed"])
    student, tokenizer = load_model(
        ctx, bf16=hp["mixed_precision"] == "bf16" and spec.adapter.type != "full"
    )
    teacher = _load_teacher(ctx, tokenizer)
    max_len = hp["max_seq_length"]
    train = _dataset(
        tokenizer, _training_examples(ctx, hp, teacher, tokenizer), max_len, "training", ctx
    )
    if train is None:
        raise SpecError(
            f"max_seq_length={max_len} cuts every training example before its first trained token",
            param=f"{PARAM}.hyperparameters.max_seq_length",
        )
    valid = _dataset(tokenizer, ctx.valid_examples, max_len, "validation", ctx)
    ctx.reporter.message(
        f"Distilling {block.teacher} into {spec.model} ({spec.adapter.type}, {block.mode} mode) "
        f"on {len(train)} examples, {hp['n_epochs']} epochs",
        data={"hyperparameters": hp},
    )
    log = ReporterCallback(ctx.reporter)
    schedule = ScheduleCallback(
        hp, ctx.reporter, log, lambda out: save_artifact(student, tokenizer, spec.adapter, out)
    )
    config = trainer_config(
        ctx,
        hp,
        GKDConfig,
        padding_free=False,
        **{k: hp.get(k, default) for k, default in DEFAULTS.items()},
        seq_kd=False,  # sequence mode's answers were generated once, above
    )
    trainer = DistillTrainer(
        model=student,
        teacher_model=teacher,
        args=config,
        train_dataset=train,
        eval_dataset=valid,
        processing_class=tokenizer,
        data_collator=Collator(tokenizer.pad_token_id),
        callbacks=[log, schedule],
        optimizers=(
            make_optimizer(student, spec.adapter, hp["learning_rate"], hp["weight_decay"]),
            None,
        ),
        cross_entropy=block.mode == "sequence",
    )
    before = rename_metrics(trainer.evaluate()) if valid is not None else None
    trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    after = None
    if valid is not None and not log.cancelled:
        after = rename_metrics(trainer.evaluate())
    evaluation = None
    if before is not None and after is not None:
        loader = trainer.get_eval_dataloader()
        taught = held_out_scores(trainer.teacher_model, None, loader, hp.get("beta", 0.0))
        evaluation = {
            "base": before,
            "tuned": after,
            "teacher": {"valid_loss": taught["loss"]},
            "valid_examples": len(valid),  # type: ignore[arg-type]
        }
    final: dict[str, Any] = dict(after or {})
    if schedule.stopped_at is not None:
        final["early_stopped_at_step"] = schedule.stopped_at
    return finish(
        ctx,
        student,
        tokenizer,
        hyperparameters=schedule.hp,
        history=log.history,
        trained_tokens=sum(len(r) for r in train["input_ids"]) * (trainer.state.epoch or 0),
        stopped_early=log.cancelled,
        final=final,
        evaluation=evaluation,
    )
