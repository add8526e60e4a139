"""What every TRL-trainer recipe passes the same way: trainer arguments, the supervised recipe's
schedule (checkpoints with resume state, pause, evaluation) and the adapter clean-up.

TRL's configs default to bf16 and gradient checkpointing on; Lathe's recipes load fp32 weights
(core.adapters.load_for_training) and choose checkpointing on the model, so both are set here
once. Logging every step feeds ReporterCallback one metrics event per step. The trainer's own
eval and save strategies stay off: ScheduleCallback decides, as for supervised jobs, so DPO,
reward models and GRPO checkpoint, pause and resume exactly like them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from core.adapters import make_optimizer, save_artifact
from core.jobspec.recipe import TrainingContext
from core.training.callbacks import ReporterCallback, quiet
from core.training.distributed import batch_args
from core.training.schedule import ScheduleCallback


def common_args(ctx: TrainingContext, hp: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments any TRL config (a transformers TrainingArguments) takes."""
    return {
        "output_dir": str(ctx.work_dir / "trainer"),
        "learning_rate": hp["learning_rate"],
        "seed": hp["seed"],
        "data_seed": hp["seed"],
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "logging_steps": 1,
        "eval_strategy": "no",  # ScheduleCallback decides when to evaluate and save
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": ctx.device == "cpu",
        "dataloader_pin_memory": False,
    }


def epoch_args(ctx: TrainingContext, hp: dict[str, Any]) -> dict[str, Any]:
    """Epoch-based training on a fixed dataset (DPO, reward models)."""
    return {
        **common_args(ctx, hp),
        "num_train_epochs": hp["n_epochs"],
        **batch_args(hp),  # per device: the user's batch whatever the number of devices
        "lr_scheduler_type": hp["lr_scheduler"],
        "warmup_steps": hp["warmup_ratio"],  # transformers 5: a value below 1 is a ratio
        "weight_decay": hp["weight_decay"],
    }


def with_schedule(hp: dict[str, Any], has_eval: bool) -> dict[str, Any]:
    """Preference hyperparameters plus the schedule ScheduleCallback reads: validation once per
    epoch when there are validation pairs (before the checkpoint of the same step)."""
    return {**hp, "eval_interval": "epoch" if has_eval else None}


def schedule(ctx: TrainingContext, hp: dict[str, Any], model: Any, tokenizer: Any):
    """(ReporterCallback, ScheduleCallback) for a TRL trainer: metrics events, checkpoints at
    `checkpoint_interval` (an artifact as of that step, without TRL's reference adapter, and
    the trainer's resume state), a checkpoint where a pause is noticed, and the stop."""

    def save(out: Path) -> None:
        save_artifact(model, tokenizer, ctx.spec.adapter, out)
        shutil.rmtree(out / "ref", ignore_errors=True)  # peft writes extra adapters in subfolders

    log = ReporterCallback(ctx.reporter)
    return log, ScheduleCallback(hp, ctx.reporter, log, save)


def preference_trainer(
    trainer_class: Any,
    config: Any,
    ctx: TrainingContext,
    hp: dict[str, Any],
    model: Any,
    tokenizer: Any,
    pairs: tuple[Any, Any],
) -> tuple[Any, Any, Any]:
    """(trainer, ReporterCallback, ScheduleCallback): a TRL trainer on preference pairs (DPO's
    or the reward model's, built the same way) over (train, validation) datasets, with the
    job's optimizer and checkpoint schedule, and its log dicts turned into job events."""
    log, plan = schedule(ctx, hp, model, tokenizer)
    optimizer = make_optimizer(model, ctx.spec.adapter, hp["learning_rate"], hp["weight_decay"])
    trainer = trainer_class(
        model=model,
        args=config,
        train_dataset=pairs[0],
        eval_dataset=pairs[1],
        processing_class=tokenizer,
        callbacks=[log, plan],
        optimizers=(optimizer, None),
    )
    quiet(trainer)  # its log dicts become job events and log lines, not stdout
    return trainer, log, plan


def train_or_resume(trainer: Any, ctx: TrainingContext) -> None:
    """`trainer.train()`, from the job's latest resume state when it has one.

    The trainer's resume loads the adapter with peft's `load_adapter`, which casts adapter
    weights to fp32, while TRL trains a QLoRA adapter in bf16: the dtypes the trainer was built
    with are put back before the first step, so a resumed run computes as the original did."""
    from transformers import TrainerCallback

    dtypes = {n: p.dtype for n, p in trainer.model.named_parameters() if p.requires_grad}

    class KeepDtypes(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            for name, param in model.named_parameters():
                if name in dtypes and param.dtype != dtypes[name]:
                    param.data = param.data.to(dtypes[name])

    if ctx.resume_from is not None:
        trainer.add_callback(KeepDtypes())
    trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)


def drop_reference_adapter(model: Any) -> None:
    """TRL keeps the reference policy of a peft model that already has an adapter as a frozen
    copy named "ref"; it must not ship in the artifact (nor double its size)."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
        model.set_adapter("default")


def trained_tokens(trainer: Any) -> int:
    """Tokens the trainer consumed, from its cumulative `num_tokens` log."""
    return int(max((h.get("num_tokens", 0) for h in trainer.state.log_history), default=0))
