"""Resolve `"auto"` hyperparameters from the dataset, the adapter type and the worker's device.

The rules (an explicit value always wins):
- n_epochs: 3, raised so that at least 100 examples are seen (≤ 25 epochs) and lowered so that
  at most 25,000 are (≥ 1) — the defaults OpenAI documents for its fine-tuning.
- batch_size: ~0.2% of the training set, between 1 and 32 (rows: packed rows when packing).
- learning_rate: the adapter's usual rate (LoRA-family 2e-4, IA3 3e-3, full 2e-5, prompt/prefix
  3e-2) times `learning_rate_multiplier` (default 1); an absolute `learning_rate` wins.
- warmup_ratio 0.03, linear schedule, weight decay 0, accumulation 1, max_seq_length 2048,
  packing on, seed the job's seed.
- eval_interval: once per epoch when there are validation examples (else no evaluation).
- checkpoint_interval: every epoch — every k-th epoch when there are more than 10, so a run
  saves at most 10 (many tiny epochs would otherwise spend more time saving than training).
  The worker keeps the latest `LATHE_MAX_CHECKPOINTS`.
- early_stopping: off. An int is the patience; `min_delta` defaults to 0.
- gradient_checkpointing: off (it saves activation memory at ~30% more compute; worth it only
  for long sequences on big models, which the client knows and we do not).
- mixed_precision: bf16 on a CUDA GPU that supports it, else "no". bf16/fp16 asked for on a
  worker without CUDA is an error, never a silent fp32 run.
- evaluation_metrics: none.

"epoch" (and auto checkpoint) intervals become steps once the trainer knows the steps per
epoch (`with_steps`), so the job object reports concrete numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from core.jobspec.job import EarlyStopping, SupervisedHyperparameters
from core.jobspec.recipe import SpecError

BASE_LR = {
    "lora": 2e-4,
    "qlora": 2e-4,
    "ia3": 3e-3,
    "full": 2e-5,
    "prompt_tuning": 3e-2,
    "prefix_tuning": 3e-2,
}

HP = "method.supervised.hyperparameters"

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
"""Where a model's config.json states its context length (Llama/BERT, GPT-2, others)."""

AUTO_CHECKPOINTS = 10
"""At most this many checkpoints per run when checkpoint_interval is "auto"."""


def auto_epochs(n_examples: int) -> int:
    epochs = 3
    if n_examples * epochs < 100:
        epochs = min(25, math.ceil(100 / max(n_examples, 1)))
    elif n_examples * epochs > 25_000:
        epochs = max(1, 25_000 // n_examples)
    return epochs


def resolve_precision(requested: str, device: str) -> str:
    """ "bf16", "fp16" or "no"; raises SpecError when the device cannot do what was asked."""
    on_cuda = device.startswith("cuda")
    if requested == "auto":
        if not on_cuda:
            return "no"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    if requested != "no" and not on_cuda:
        raise SpecError(
            f"mixed_precision={requested!r} needs a CUDA GPU; this worker runs on {device}. "
            "Use 'no' (fp32) or 'auto'.",
            param=f"{HP}.mixed_precision",
            code="unsupported_on_worker",
        )
    return requested


def _early_stopping(value: Any) -> dict[str, float] | None:
    if value == "auto":
        return None
    if isinstance(value, int):
        value = EarlyStopping(patience=value)
    return value.model_dump()


def resolve(
    hp: SupervisedHyperparameters,
    n_examples: int,
    adapter_type: str,
    seed: int,
    *,
    device: str = "cpu",
    has_validation: bool = False,
) -> dict[str, Any]:
    """Every field concrete (intervals may still read "epoch"); the job object reports these."""

    def pick(name: str, default: Any) -> Any:
        value = getattr(hp, name)
        return default if value == "auto" else value

    needs_validation = [
        name for name in ("eval_interval", "early_stopping") if getattr(hp, name) != "auto"
    ] + (["evaluation_metrics"] if hp.evaluation_metrics else [])
    if needs_validation and not has_validation:
        raise SpecError(
            f"{needs_validation[0]} needs validation examples: give a validation_file "
            "(or data.validation_split)",
            param=f"{HP}.{needs_validation[0]}",
        )
    multiplier = pick("learning_rate_multiplier", 1.0)
    return {
        "n_epochs": pick("n_epochs", auto_epochs(n_examples)),
        "batch_size": pick("batch_size", min(32, max(1, round(n_examples * 0.002)))),
        "learning_rate_multiplier": multiplier,
        "learning_rate": pick("learning_rate", BASE_LR[adapter_type] * multiplier),
        "warmup_ratio": pick("warmup_ratio", 0.03),
        "lr_scheduler": pick("lr_scheduler", "linear"),
        "weight_decay": pick("weight_decay", 0.0),
        "gradient_accumulation_steps": pick("gradient_accumulation_steps", 1),
        "max_seq_length": pick("max_seq_length", 2048),
        "packing": pick("packing", True),
        "seed": pick("seed", seed),
        "eval_interval": pick("eval_interval", "epoch") if has_validation else None,
        "early_stopping": _early_stopping(hp.early_stopping),
        "gradient_checkpointing": pick("gradient_checkpointing", False),
        "mixed_precision": resolve_precision(hp.mixed_precision, device),
        "checkpoint_interval": hp.checkpoint_interval,  # "auto" needs the steps per epoch
        "evaluation_metrics": list(hp.evaluation_metrics),
    }


def with_steps(hp: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """Replace "epoch" and "auto" intervals by numbers of optimizer steps."""
    out = dict(hp)
    if out.get("eval_interval") == "epoch":
        out["eval_interval"] = steps_per_epoch
    if out.get("checkpoint_interval") == "epoch":
        out["checkpoint_interval"] = steps_per_epoch
    elif out.get("checkpoint_interval") == "auto":
        every = math.ceil(out["n_epochs"] / AUTO_CHECKPOINTS)
        out["checkpoint_interval"] = steps_per_epoch * every
    return out


# Preference and online RL methods (the blocks of core/jobs/rlhf_spec.py).

METHOD_LR_FACTOR = {"dpo": 0.05, "reward_model": 0.5, "ppo": 0.15, "grpo": 0.05}
"""A method's learning rate relative to SFT's for the same adapter, from the papers' full-model
rates against SFT's 2e-5: DPO 1e-6, reward model 1e-5 (InstructGPT: 9e-6), PPO 3e-6 (N+),
GRPO 1e-6 (DeepSeekMath)."""


def _rlhf_common(method: str, hp: Any, adapter_type: str, seed: int) -> dict[str, Any]:
    def pick(name: str, default: Any) -> Any:
        value = getattr(hp, name)
        return default if value == "auto" else value

    multiplier = pick("learning_rate_multiplier", 1.0)
    rate = BASE_LR[adapter_type] * METHOD_LR_FACTOR[method] * multiplier
    return {
        **hp.model_dump(),
        "learning_rate_multiplier": multiplier,
        "learning_rate": pick("learning_rate", rate),
        "max_seq_length": pick("max_seq_length", 1024),
        "seed": pick("seed", seed),
    }


def resolve_preference(
    method: str, hp: Any, n_pairs: int, adapter_type: str, seed: int
) -> dict[str, Any]:
    """DPO / reward model hyperparameters, every field concrete. Reward models default to one
    epoch (InstructGPT: more overfits the comparisons); DPO follows OpenAI's epoch rule."""
    out = _rlhf_common(method, hp, adapter_type, seed)
    epochs = 1 if method == "reward_model" else auto_epochs(n_pairs)
    defaults = {
        "n_epochs": epochs,
        "batch_size": min(32, max(1, round(n_pairs * 0.002))),
        "warmup_ratio": 0.1,
        "lr_scheduler": "linear",
        "weight_decay": 0.0,
        "gradient_accumulation_steps": 1,
        "beta": 0.1,
    }
    for name, default in defaults.items():
        if out.get(name, "auto") == "auto" and (name in out):
            out[name] = default
    return out


def resolve_online(
    method: str, hp: Any, n_prompts: int, adapter_type: str, seed: int
) -> dict[str, Any]:
    """PPO / GRPO hyperparameters, every field concrete; `total_steps` counts policy updates."""
    out = _rlhf_common(method, hp, adapter_type, seed)
    batch = out["batch_size"] if out["batch_size"] != "auto" else max(1, min(64, n_prompts))
    epochs = out["n_epochs"] if out["n_epochs"] != "auto" else 1
    steps = math.ceil(epochs * n_prompts / batch)
    ppo = method == "ppo"
    defaults = {
        "batch_size": batch,
        "n_epochs": epochs,
        "total_steps": max(1, steps),
        "max_new_tokens": 53 if ppo else 256,
        "temperature": 0.7 if ppo else 1.0,
        "kl_coef": 0.05,
        "mini_batch_size": max(1, batch // 4),
        "beta": 0.04,
    }
    for name, default in defaults.items():
        if out.get(name, "auto") == "auto" and (name in out):
            out[name] = default
    if ppo and out["mini_batch_size"] > batch:
        raise SpecError(
            f"mini_batch_size ({out['mini_batch_size']}) must not exceed batch_size ({batch})",
            param="method.ppo.hyperparameters.mini_batch_size",
        )
    return out


def model_context(model_dir: Path) -> int | None:
    """The base model's context length from its config.json (no torch), or None when the
    config does not say."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for key in CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_context(max_seq_length: int | str, model_dir: Path, param: str) -> None:
    """SpecError naming `param` when an explicit max_seq_length exceeds the base model's
    context: positions past it were never trained (or do not exist), and the allocation of
    a sequence that long is what takes a worker down. "auto" resolves to at most 2048."""
    context = model_context(model_dir)
    if isinstance(max_seq_length, int) and context is not None and max_seq_length > context:
        raise SpecError(
            f"max_seq_length {max_seq_length} exceeds the base model's context of {context} "
            "tokens (max_position_embeddings in its config.json)",
            param=param,
        )


def check_spec_context(spec: Any, model_dir: Path) -> None:
    """check_context for a job spec's method block (at worker start, before any loading)."""
    method = spec.method
    block = getattr(method, method.type, None)
    hp = getattr(block, "hyperparameters", None)
    value = getattr(hp, "max_seq_length", "auto")
    check_context(value, model_dir, f"method.{method.type}.hyperparameters.max_seq_length")
