"""Scoring text with a reward model: one place, used by /v1/rewards, PPO and GRPO.

A reward model is trained on conversations rendered with the chat template (TRL's
RewardTrainer renders prompt + completion as one conversation), so a conversation is scored
rendered the same way; a plain string is scored as it is. The score is the model's single
logit at the last non-pad token (sequence classification with num_labels=1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Conversation = Sequence[dict[str, Any]]
ScoreInput = str | Conversation


class RewardScorer:
    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, max_length: int = 4096):
        config = model.config
        if getattr(config, "num_labels", None) != 1:
            raise ValueError("a reward model has exactly one output (num_labels=1)")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    def render(self, item: ScoreInput) -> str:
        if isinstance(item, str):
            return item
        return self.tokenizer.apply_chat_template(list(item), tokenize=False)

    def score(self, items: Sequence[ScoreInput]) -> list[float]:
        """One float per item, higher is better."""
        return self.score_texts([self.render(item) for item in items])

    def count_tokens(self, items: Sequence[ScoreInput]) -> int:
        texts = [self.render(item) for item in items]
        enc = self.tokenizer(
            texts, add_special_tokens=False, truncation=True, max_length=self.max_length
        )
        return sum(len(ids) for ids in enc["input_ids"])

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        import torch

        device = next(self.model.parameters()).device
        scores: list[float] = []
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "right"
        try:
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                enc = self.tokenizer(
                    batch,
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    add_special_tokens=False,
                )
                with torch.inference_mode():
                    logits = self.model(**{k: v.to(device) for k, v in enc.items()}).logits
                scores += [float(s) for s in logits[:, 0].float().cpu()]
        finally:
            self.tokenizer.padding_side = side
        return scores
