"""Resolve `"auto"` hyperparameters from the dataset and the adapter type.

The rules (documented in the README):
- n_epochs: 3, raised so that at least 100 examples are seen (≤ 25 epochs) and lowered so that
  at most 25,000 are (≥ 1) — the defaults OpenAI documents for its fine-tuning.
- batch_size: ~0.2% of the training set, between 1 and 32.
- learning_rate: the adapter's usual rate (LoRA-family 2e-4, full 2e-5, prompt/prefix 3e-2)
  times `learning_rate_multiplier` (default 1); an absolute `learning_rate` wins.
- warmup_ratio 0.03, linear schedule, weight decay 0, accumulation 1, max_seq_length 2048,
  packing on for causal LM data, seed the job's seed.
"""

from __future__ import annotations

import math
from typing import Any

from core.jobs.spec import SupervisedHyperparameters

BASE_LR = {
    "lora": 2e-4,
    "qlora": 2e-4,
    "ia3": 3e-3,
    "full": 2e-5,
    "prompt_tuning": 3e-2,
    "prefix_tuning": 3e-2,
}


def auto_epochs(n_examples: int) -> int:
    epochs = 3
    if n_examples * epochs < 100:
        epochs = min(25, math.ceil(100 / max(n_examples, 1)))
    elif n_examples * epochs > 25_000:
        epochs = max(1, 25_000 // n_examples)
    return epochs


def resolve(
    hp: SupervisedHyperparameters, n_examples: int, adapter_type: str, seed: int
) -> dict[str, Any]:
    """Every field concrete; the job object reports these."""

    def pick(name: str, default: Any) -> Any:
        value = getattr(hp, name)
        return default if value == "auto" else value

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
    }
