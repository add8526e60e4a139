"""Recording drift samples: the opt-in check, the summary of one request, bounded storage.

The request path pays one cached flag lookup when an organization has not opted in, and one
insert plus two indexed deletes when it has (the per-model cap and the retention window are
enforced as samples arrive, and by `prune_expired` for models that stopped getting traffic).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.persistence.drift_models import DriftSample
from core.persistence.models import Organization, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)


class OptInCache:
    """Which organizations opted in, as this process last read it (LATHE_DRIFT_OPT_IN_CACHE_S):
    an organization that has not opted in costs its requests no query most of the time."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def enabled(self, session: Session, org_id: str, ttl_s: float) -> bool:
        with self._lock:
            hit = self._seen.get(org_id)
        if hit and time.monotonic() - hit[1] < ttl_s:
            return hit[0]
        value = bool(session.scalar(select(Organization.drift_monitoring).where(
            Organization.id == org_id)))  # fmt: skip
        with self._lock:
            self._seen[org_id] = (value, time.monotonic())
        return value

    def forget(self, org_id: str) -> None:
        with self._lock:
            self._seen.pop(org_id, None)


OPT_IN = OptInCache()


def set_enabled(session: Session, org_id: str, enabled: bool) -> None:
    """Opt in or out; opting out deletes the organization's samples (nothing is kept that the
    organization no longer agrees to)."""
    org = session.get(Organization, org_id)
    org.drift_monitoring = enabled
    if not enabled:
        session.execute(delete(DriftSample).where(DriftSample.organization_id == org_id))
    session.flush()
    OPT_IN.forget(org_id)


def chat_prompt(messages: list[dict[str, Any]]) -> str:
    """The text a chat request asks about: its messages' contents, one per line."""
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("content"))


def answer_summary(answer: dict[str, Any] | None) -> dict[str, int | None]:
    """Completion length and token counts of a JSON answer (all None for a stream)."""
    if not answer:
        return {"completion_chars": None, "prompt_tokens": None, "completion_tokens": None}
    texts = []
    for choice in answer.get("choices") or []:
        message = choice.get("message") or {}
        texts.append(str(message.get("content") or choice.get("text") or ""))
    usage = answer.get("usage") or {}
    return {
        "completion_chars": sum(map(len, texts)) // max(1, len(texts)),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }


def record(
    session: Session,
    settings: Settings,
    org_id: str,
    model_id: str,
    prompts: list[str],
    answer: dict[str, Any] | None,
) -> int:
    """Store one sample per prompt of an answered request when the organization opted in;
    returns how many were stored. Commits: the caller's answer is already decided."""
    if not OPT_IN.enabled(session, org_id, settings.drift.opt_in_cache_s):
        return 0
    summary = answer_summary(answer)
    if len(prompts) > 1:  # usage covers the whole batch: per prompt, it is unknown
        summary = {**summary, "prompt_tokens": None, "completion_tokens": None}
    for prompt in prompts:
        session.add(
            DriftSample(
                organization_id=org_id,
                model_id=model_id,
                prompt=prompt[: settings.drift.prompt_chars],
                prompt_chars=len(prompt),
                **summary,
            )
        )
    session.flush()
    prune(session, settings, org_id, model_id)
    session.commit()
    return len(prompts)


def prune(session: Session, settings: Settings, org_id: str, model_id: str) -> None:
    """Keep the model's newest LATHE_DRIFT_SAMPLES_PER_MODEL samples within the retention."""
    mine = (DriftSample.organization_id == org_id) & (DriftSample.model_id == model_id)
    cutoff_id = session.scalar(
        select(DriftSample.id)
        .where(mine)
        .order_by(DriftSample.id.desc())
        .offset(settings.drift.samples_per_model)
        .limit(1)
    )
    if cutoff_id is not None:
        session.execute(delete(DriftSample).where(mine, DriftSample.id <= cutoff_id))
    session.execute(delete(DriftSample).where(mine, DriftSample.created_at < _cutoff(settings)))


def prune_expired(session: Session, settings: Settings) -> int:
    """Delete every sample past the retention window (the API's sweeper pass calls this)."""
    result = session.execute(delete(DriftSample).where(DriftSample.created_at < _cutoff(settings)))
    return result.rowcount or 0


def _cutoff(settings: Settings):
    return utcnow() - timedelta(days=settings.drift.retention_days)


def recent(session: Session, settings: Settings, org_id: str, model_id: str) -> list[DriftSample]:
    """The newest LATHE_DRIFT_WINDOW_SAMPLES samples within the retention, oldest first."""
    rows = session.scalars(
        select(DriftSample)
        .where(DriftSample.organization_id == org_id, DriftSample.model_id == model_id)
        .where(DriftSample.created_at >= _cutoff(settings))
        .order_by(DriftSample.id.desc())
        .limit(settings.drift.window_samples)
    ).all()
    return list(reversed(rows))


def record_quietly(
    settings: Settings,
    org_id: str,
    model_id: str,
    prompts: list[str],
    answer: dict[str, Any] | None,
) -> None:
    """`record` in a session of its own, after the answer was sent (a background task): a
    failure here is logged, never the client's error."""
    from core.persistence.db import session_scope

    try:
        with session_scope(settings.resolved_database_url) as session:
            record(session, settings, org_id, model_id, prompts, answer)
    except Exception:
        log.exception("recording a drift sample for %s failed", model_id)
