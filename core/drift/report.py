"""`GET /v1/models/{id}/drift`: recent traffic of one organization to one of its models,
against the model's training rows (score.py says how they are compared).

Reports are computed on demand, off the request path of inference. The reference (sampled
rows and their embeddings) is kept per training file in a small in-process cache: a training
file never changes. The latest score per model is kept for the `lathe_drift_score` gauge.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core.drift import embed, samples, score
from core.drift.reference import Reference, load_reference, training_file
from core.persistence.models import Model, Organization
from core.settings import Settings
from core.storage import Storage

_CACHED = 8
_refs: OrderedDict[tuple[str, str | None], tuple[Reference, np.ndarray | None]] = OrderedDict()
_refs_lock = threading.Lock()
LATEST: dict[str, float] = {}
"""model id -> its latest drift score, for /metrics (this process's reports)."""


def drift_report(
    session: Session, storage: Storage, settings: Settings, org_id: str, model: Model
) -> dict[str, Any]:
    base: dict[str, Any] = {"object": "model.drift", "model": model.id}
    if not session.get(Organization, org_id).drift_monitoring:
        return {**base, "status": "not_enabled", "message": "drift monitoring is off for "
                "this organization: POST /v1/organization/drift {\"enabled\": true}"}  # fmt: skip
    if model.job_id is None:
        return {**base, "status": "no_reference", "message": "base models have no training "
                "data to compare with: drift is reported for fine-tuned models"}  # fmt: skip
    file = training_file(session, model)
    if file is None:
        return {**base, "status": "no_reference", "message": "the training file of the job "
                "that made this model was deleted: there is nothing to compare with"}  # fmt: skip
    rows = samples.recent(session, settings, org_id, model.id)
    window = {
        "samples": len(rows),
        "start": rows[0].created_at.isoformat() if rows else None,
        "end": rows[-1].created_at.isoformat() if rows else None,
        "retention_days": settings.drift.retention_days,
    }
    base["window"] = window
    if len(rows) < settings.drift.min_samples:
        return {**base, "status": "insufficient_samples", "message": f"{len(rows)} recent "
                f"samples; a report needs at least {settings.drift.min_samples}"}  # fmt: skip
    name = embed.encoder_name(settings)
    ref, ref_vectors = _reference(storage, settings, file, name)
    prompts = [r.prompt for r in rows]
    report = {
        **base,
        "status": "ok",
        "reference": {
            "training_file": ref.file_id,
            "rows": len(ref.prompts),
            "rows_in_file": ref.rows_read,
        },  # fmt: skip
        "lengths": _lengths(rows, ref),
        "tokens": {
            "prompt_tokens": score.distribution(
                [r.prompt_tokens for r in rows if r.prompt_tokens is not None]
            ),  # fmt: skip
            "completion_tokens": score.distribution(
                [r.completion_tokens for r in rows if r.completion_tokens is not None]
            ),
            **score.token_distribution(prompts, ref.prompts),
        },
        "embedding": None,
    }
    if name and ref_vectors is not None and len(ref_vectors) >= 2:
        result = score.embedding_drift(ref_vectors, embed.embed(settings, name, prompts))
        report["embedding"] = {**result, "encoder": name}
        LATEST[model.id] = result["score"]
    return report


def _lengths(rows: list, ref: Reference) -> dict[str, Any]:
    prompt_chars = [r.prompt_chars for r in rows]
    ref_chars = [len(p) for p in ref.prompts]
    return {
        "prompt_chars": {
            "traffic": score.distribution(prompt_chars),
            "training": score.distribution(ref_chars),
        },  # fmt: skip
        "prompt_words": {
            "traffic": score.distribution([len(score.words(r.prompt)) for r in rows]),
            "training": score.distribution([len(score.words(p)) for p in ref.prompts]),
        },
        "completion_chars": {
            "traffic": score.distribution(
                [r.completion_chars for r in rows if r.completion_chars is not None]
            ),
            "training": score.distribution([len(c) for c in ref.completions]),
        },
        "prompt_chars_ks": score.ks(prompt_chars, ref_chars),
    }


def _reference(storage: Storage, settings: Settings, file, name: str | None):
    key = (file.id, name)
    with _refs_lock:
        if key in _refs:
            _refs.move_to_end(key)
            return _refs[key]
    ref = load_reference(storage, settings, file)
    vectors = embed.embed(settings, name, ref.prompts) if name and ref.prompts else None
    with _refs_lock:
        _refs[key] = (ref, vectors)
        while len(_refs) > _CACHED:
            _refs.popitem(last=False)
    return ref, vectors
