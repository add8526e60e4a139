"""Class probabilities from a sequence-classification model (core.methods.classification).

Texts are scored in batches, right-padded and truncated to what the encoder's position
embeddings can take; the labels come from the model config, which the artifact's manifest
fills in class-id order (core.adapters.load_for_inference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Classification:
    label: str
    probabilities: dict[str, float]


def max_input_length(model: Any, tokenizer: Any) -> int:
    """The longest input the encoder takes: its position embeddings' (or tokenizer's) limit."""
    limits = [
        getattr(model.config, "max_position_embeddings", None),
        tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else None,
    ]
    return min([n for n in limits if n] or [512])


def classify(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 32
) -> tuple[list[Classification], int]:
    """One Classification per text, and the number of tokens read."""
    import torch

    config = model.config
    labels = [config.id2label[i] for i in range(config.num_labels)]
    device = next(model.parameters()).device
    out: list[Classification] = []
    n_tokens = 0
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_input_length(model, tokenizer),
            return_tensors="pt",
        )
        n_tokens += int(enc["attention_mask"].sum())
        with torch.inference_mode():
            probs = model(**enc.to(device)).logits.float().softmax(-1).cpu()
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append(Classification(labels[best], dict(zip(labels, row, strict=True))))
    return out, n_tokens
