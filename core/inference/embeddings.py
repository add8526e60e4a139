"""`/v1/embeddings` in the inference service: a vector per input, pooled from a model's last
hidden layer.

Pooling, by what the model is:
- an encoder base (BERT-like, e.g. the shipped MiniLM): the mean over the input's tokens
  (attention-masked), L2-normalised — how sentence-transformers pools these models;
- a causal LM, base or fine-tuned (any adapter): the hidden state of the input's last token
  (the only one that has read the whole input), L2-normalised — vLLM's default for
  decoder-only embedding models.
`dimensions` keeps the first N components and normalises again (OpenAI's shortening).

Vectors come from a whole model per served model (the LRU of whole models), read under the
engine's scoring lock: the shared base's adapters belong to the generation thread.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from core.errors import InvalidRequest
from core.inference.engine import InferenceEngine
from core.model_store import StoredModel
from core.registry import base_model_path

BATCH = 16
POOLING = {"encoder": "mean", "causal_lm": "last"}


def hidden_size(engine: InferenceEngine, model: StoredModel) -> int:
    import json

    config = json.loads(
        (base_model_path(engine.settings, model.base_model) / "config.json").read_text()
    )
    return int(config.get("hidden_size") or config.get("d_model") or 0)


def _load(engine: InferenceEngine, model: StoredModel, task: str) -> Any:
    if task == "encoder":
        from transformers import AutoModel

        path = base_model_path(engine.settings, model.base_model)
        key = f"embed:{model.id}"
        return engine.pool.whole.get_or_load(
            key, lambda: (AutoModel.from_pretrained(path).eval(), None)
        )[0]
    return engine.pool.whole.get_or_load(model.id, lambda: engine.pool.store.load(model))[0]


def _ids(
    engine: InferenceEngine, model: StoredModel, inputs: list, context: int
) -> list[list[int]]:
    tok = engine.tokenizer(model)
    vocab = len(tok)
    out = []
    for i, item in enumerate(inputs):
        where = "input" if len(inputs) == 1 else f"input[{i}]"
        ids = list(tok(item)["input_ids"]) if isinstance(item, str) else list(item)
        if not ids:
            raise InvalidRequest(f"{where} must not be empty", param=where)
        if any(not 0 <= t < vocab for t in ids):
            raise InvalidRequest(f"{where} holds a token id outside the vocabulary", param=where)
        if len(ids) > context:
            raise InvalidRequest(
                f"{where} has {len(ids)} tokens; this model reads at most {context}",
                param=where,
                code="context_length_exceeded",
            )
        out.append(ids)
    return out


def _vectors(lm: Any, id_lists: list[list[int]], pooling: str) -> list[list[float]]:
    import torch

    vectors: list[list[float]] = []
    for start in range(0, len(id_lists), BATCH):
        chunk = id_lists[start : start + BATCH]
        width = max(map(len, chunk))
        ids = torch.tensor([x + [0] * (width - len(x)) for x in chunk])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk])
        with torch.inference_mode():
            out = lm(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = out.hidden_states[-1].float()
        if pooling == "mean":
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            pooled = hidden[torch.arange(len(chunk)), mask.sum(1) - 1]
        vectors += torch.nn.functional.normalize(pooled, dim=-1).tolist()
    return vectors


def _shorten(vector: list[float], dimensions: int | None) -> list[float]:
    if dimensions is None or dimensions == len(vector):
        return vector
    head = vector[:dimensions]
    norm = sum(v * v for v in head) ** 0.5 or 1.0
    return [v / norm for v in head]


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embed(engine: InferenceEngine, model: StoredModel, body: dict) -> dict:
    """OpenAI's embedding list for `body` (input, encoding_format, dimensions, model)."""
    task = engine.task(model)
    if task not in POOLING:
        raise InvalidRequest(
            f"{model.id} cannot embed: only encoder bases and causal LMs (and their "
            "fine-tunes) give embeddings",
            param="model",
            code="model_not_supported",
        )
    size = hidden_size(engine, model)
    dimensions = body.get("dimensions")
    if dimensions is not None and not 1 <= dimensions <= size:
        raise InvalidRequest(
            f"dimensions must be between 1 and {size} for {model.id}", param="dimensions"
        )
    id_lists = _ids(engine, model, body["input"], engine.context_length(model))
    lm = _load(engine, model, task)
    with engine.score_lock:
        vectors = _vectors(lm, id_lists, POOLING[task])
    fmt = body.get("encoding_format") or "float"
    tokens = sum(map(len, id_lists))
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(_shorten(v, dimensions), fmt)}
            for i, v in enumerate(vectors)
        ],
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
