"""Prompt embeddings for drift scores: the configured encoder (LATHE_DRIFT_EMBEDDING_MODEL, a
base model such as `minilm`), mean-pooled over the attention mask as sentence-transformers
encoders are meant to be. Loaded on the first report and kept (torch loads lazily, never at
API start-up); reports embed in small batches under a lock, off the request path."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from core.errors import InvalidRequest
from core.settings import Settings

MAX_TOKENS = 128
BATCH = 32
_loaded: dict[str, Any] = {}
_lock = threading.Lock()


def encoder_name(settings: Settings) -> str | None:
    """The configured encoder, or None when drift scores are off; a name that is not a base
    model is the operator's error, said plainly."""
    name = settings.drift.embedding_model
    if name and name not in settings.base_models:
        raise InvalidRequest(
            f"LATHE_DRIFT_EMBEDDING_MODEL names {name!r}, which is not a configured base model"
        )
    return name


def embed(settings: Settings, name: str, texts: list[str]) -> np.ndarray:
    from core.graders.embedding import Encoder
    from core.registry import base_model_path

    with _lock:
        if name not in _loaded:
            _loaded[name] = Encoder(base_model_path(settings, name))
        encoder = _loaded[name]
        torch = encoder._torch
        out = []
        for start in range(0, len(texts), BATCH):
            batch = encoder.tokenizer(
                texts[start : start + BATCH] or [""],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = encoder.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy())
    return np.concatenate(out)
