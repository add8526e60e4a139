"""text_similarity's `cosine`: the cosine of two texts' embeddings, from an encoder in the
base-model registry (LATHE_GRADER_EMBEDDING_MODEL, e.g. all-MiniLM-L6-v2).

Embeddings are the encoder's last hidden states mean-pooled over the attention mask (how
sentence-transformers models such as MiniLM are meant to be pooled). The encoder loads once per
process and is kept (one per configured name, an explicit cache): grading binds it before
the first row, so loading never counts against a row's grading budget.
"""

from __future__ import annotations

import threading
from typing import Any

from core.errors import InvalidRequest

MAX_EMBED_TOKENS = 256
"""Tokens of each text the encoder reads (MiniLM was trained on 256)."""


class Encoder:
    def __init__(self, path: Any):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self._lock = threading.Lock()

    def cosine(self, a: str, b: str) -> float:
        torch = self._torch
        batch = self.tokenizer(
            [a, b],
            padding=True,
            truncation=True,
            max_length=MAX_EMBED_TOKENS,
            return_tensors="pt",
        )
        with self._lock, torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return float(torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=0))


class EncoderCache:
    """One Encoder per registry name, loaded on first use."""

    def __init__(self) -> None:
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    def get(self, settings: Any) -> Encoder:
        from core.registry import base_model_path

        name = require_encoder(settings)
        with self._lock:
            if name not in self._encoders:
                self._encoders[name] = Encoder(base_model_path(settings, name))
            return self._encoders[name]


ENCODERS = EncoderCache()


def require_encoder(settings: Any, param: str = "grader.evaluation_metric") -> str:
    """The configured encoder's name; InvalidRequest naming `param` when none is."""
    name = getattr(settings.graders, "embedding_model", None)
    if not name:
        raise InvalidRequest(
            "evaluation_metric 'cosine' needs an embedding model: the operator sets "
            "LATHE_GRADER_EMBEDDING_MODEL to a base model (e.g. all-MiniLM-L6-v2)",
            param=param,
        )
    if name not in settings.base_models:
        raise InvalidRequest(
            f"evaluation_metric 'cosine': LATHE_GRADER_EMBEDDING_MODEL names {name!r}, which "
            "is not a configured base model",
            param=param,
        )
    return name
