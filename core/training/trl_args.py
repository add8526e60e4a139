"""What every TRL-trainer recipe passes the same way: trainer arguments and the adapter clean-up.

TRL's configs default to bf16 and gradient checkpointing on; Lathe's recipes load fp32 weights
(core.adapters.load_for_training) and choose checkpointing on the model, so both are set here
once. Logging every step feeds ReporterCallback one metrics event per step.
"""

from __future__ import annotations

from typing import Any

from core.methods.base import TrainingContext


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
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": ctx.device == "cpu",
        "dataloader_pin_memory": False,
    }


def epoch_args(ctx: TrainingContext, hp: dict[str, Any], has_eval: bool) -> dict[str, Any]:
    """Epoch-based training on a fixed dataset (DPO, reward models), evaluated each epoch."""
    return {
        **common_args(ctx, hp),
        "num_train_epochs": hp["n_epochs"],
        "per_device_train_batch_size": hp["batch_size"],
        "per_device_eval_batch_size": hp["batch_size"],
        "gradient_accumulation_steps": hp["gradient_accumulation_steps"],
        "lr_scheduler_type": hp["lr_scheduler"],
        "warmup_steps": hp["warmup_ratio"],  # transformers 5: a value below 1 is a ratio
        "weight_decay": hp["weight_decay"],
        "eval_strategy": "epoch" if has_eval else "no",
    }


def drop_reference_adapter(model: Any) -> None:
    """TRL keeps the reference policy of a peft model that already has an adapter as a frozen
    copy named "ref"; it must not ship in the artifact (nor double its size)."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
        model.set_adapter("default")


def trained_tokens(trainer: Any) -> int:
    """Tokens the trainer consumed, from its cumulative `num_tokens` log."""
    return int(max((h.get("num_tokens", 0) for h in trainer.state.log_history), default=0))
