"""Send due deliveries: the API's delivery loop calls `deliver_due` every
LATHE_WEBHOOK_POLL_INTERVAL_S, outside any request.

A pass claims a batch of due rows (`FOR UPDATE SKIP LOCKED` on Postgres, so several API
processes share the work) by pushing their `next_attempt_at` past the attempt's timeout — a
lease: if this process dies mid-attempt the row comes due again and is retried (deliveries are
at least once; receivers dedupe on `webhook-id`). Each attempt is recorded on its row: a 2xx
delivers it; anything else is retried after `retry_base_s * 2**(attempts-1)` (at most
`retry_max_s`) until `max_attempts`, then marked failed.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.persistence.db import session_scope
from core.persistence.models import utcnow
from core.persistence.webhook_models import WebhookDelivery, WebhookEndpoint
from core.settings import Settings
from core.webhooks import signing, urls
from core.webhooks.endpoints import signing_secrets

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """What one attempt needs, detached from the session, and what it got back."""

    delivery_id: str
    event_id: str
    url: str
    secrets: list[str]
    body: bytes
    status: int | None = None
    response: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def backoff_s(settings: Settings, attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: base, 2×base, 4×base, … capped."""
    return min(settings.webhooks.retry_max_s, settings.webhooks.retry_base_s * 2 ** (attempts - 1))


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _claim(session: Session, settings: Settings) -> list[Attempt]:
    now = utcnow()
    rows = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(settings.webhooks.batch_size)
            .with_for_update(skip_locked=True)
        )
    )
    lease = now + timedelta(seconds=settings.webhooks.timeout_s * 3 + 30)
    claimed = []
    for row in rows:
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        if endpoint is None:  # deleted meanwhile: the cascade removes the row too
            continue
        row.attempts += 1
        row.next_attempt_at = lease
        row.last_attempt_at = now
        secrets = signing_secrets(endpoint)
        claimed.append(Attempt(row.id, row.event_id, endpoint.url, secrets, body_of(row.payload)))
    return claimed


def send(settings: Settings, attempt: Attempt) -> Attempt:
    """One POST, bounded: the URL re-checked, no redirects, the whole attempt within
    LATHE_WEBHOOK_TIMEOUT_S, at most LATHE_WEBHOOK_RESPONSE_BYTES of the body read."""
    try:
        urls.check(attempt.url, settings.security.allow_private_urls)
        headers = signing.headers(attempt.secrets, attempt.event_id, attempt.body)
        deadline = time.monotonic() + settings.webhooks.timeout_s
        timeout = httpx.Timeout(settings.webhooks.timeout_s)
        client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)
        with client, client.stream("POST", attempt.url, content=attempt.body, headers=headers) as r:
            attempt.status = r.status_code
            kept = b""
            for chunk in r.iter_bytes():
                kept += chunk[: max(0, settings.webhooks.response_bytes - len(kept))]
                if len(kept) >= settings.webhooks.response_bytes or time.monotonic() > deadline:
                    break
            attempt.response = kept.decode("utf-8", "replace")
    except urls.UrlRefused as exc:
        attempt.error = f"URL refused: {exc}"
    except httpx.HTTPError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"[:500]
    return attempt


def _record(session: Session, settings: Settings, attempt: Attempt) -> None:
    row = session.get(WebhookDelivery, attempt.delivery_id)
    if row is None:  # its endpoint was deleted during the attempt
        return
    now = utcnow()
    row.response_status, row.response_body, row.error = (
        attempt.status,
        attempt.response,
        attempt.error,
    )
    if attempt.ok:
        row.status, row.delivered_at, row.next_attempt_at = "succeeded", now, None
    elif row.attempts >= settings.webhooks.max_attempts:
        row.status, row.next_attempt_at = "failed", None
    else:
        row.next_attempt_at = now + timedelta(seconds=backoff_s(settings, row.attempts))


PRUNE_EVERY_S = 3600.0
_last_prune = [float("-inf")]


def prune(session: Session, settings: Settings) -> int:
    """Drop finished deliveries older than LATHE_WEBHOOK_LOG_RETENTION_S: the log is bounded."""
    cutoff = utcnow() - timedelta(seconds=settings.webhooks.log_retention_s)
    result = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status.in_(["succeeded", "failed"]), WebhookDelivery.created_at < cutoff
        )
    )
    return result.rowcount


def deliver_due(settings: Settings) -> int:
    """One pass: claim, send in parallel (bounded), record. Returns the attempts made.
    About once an hour it also prunes the log."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        if time.monotonic() - _last_prune[0] > PRUNE_EVERY_S:
            _last_prune[0] = time.monotonic()
            prune(session, settings)
        claimed = _claim(session, settings)
    if not claimed:
        return 0
    with ThreadPoolExecutor(max_workers=min(8, len(claimed))) as pool:
        done = list(pool.map(lambda a: send(settings, a), claimed))
    with session_scope(url) as session:
        for attempt in done:
            _record(session, settings, attempt)
    failed = [a for a in done if not a.ok]
    if failed:
        log.warning("%d of %d webhook deliveries failed this pass", len(failed), len(done))
    return len(done)


def send_test(settings: Settings, endpoint: WebhookEndpoint, event_type: str) -> Attempt:
    """A sample event sent now (`POST /v1/webhook_endpoints/{id}/test`); not in the log."""
    from core.webhooks import events

    payload = events.payload(event_type, events.sample_data(event_type))
    secrets = signing_secrets(endpoint)
    return send(settings, Attempt("test", payload["id"], endpoint.url, secrets, body_of(payload)))
