"""The delivery loop against a real receiver, on a migrated SQLite database: a refused
delivery backs off and is marked failed after its attempts; the response kept is bounded;
URLs into the server's own networks are refused at registration and at send time."""

from __future__ import annotations

import time

import pytest

from core.errors import InvalidRequest
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Organization
from core.persistence.webhook_models import WebhookDelivery
from core.settings import Settings
from core.webhooks import delivery, endpoints, outbox, urls
from tests.utils.webhook_receiver import receiver


@pytest.fixture
def settings(tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path / 'lathe.db'}"
    upgrade(url)
    with session_scope(url) as session:
        session.add(Organization(id="org-1", name="acme"))
    return Settings(
        database={"url": url},
        security={"allow_private_urls": True},
        webhooks={"max_attempts": 2, "retry_base_s": 0.2, "response_bytes": 4},
    )


def _delivery(settings: Settings) -> WebhookDelivery:
    with session_scope(settings.resolved_database_url) as session:
        (row,) = session.query(WebhookDelivery).all()
        session.expunge(row)
    return row


def test_a_refusing_receiver_is_retried_with_backoff_then_marked_failed(settings):
    url = settings.resolved_database_url
    with receiver(fail_first=100) as hook:
        with session_scope(url) as session:
            endpoints.create_endpoint(
                session, settings, "org-1", "ci", hook.url, ["fine_tuning.job.failed"]
            )
            assert outbox.enqueue(session, "org-1", "fine_tuning.job.failed", {"id": "j"}) == 1
            assert outbox.enqueue(session, "org-1", "fine_tuning.job.succeeded", {}) == 0
        assert delivery.deliver_due(settings) == 1
        first = _delivery(settings)
        assert (first.status, first.attempts, first.response_status) == ("pending", 1, 500)
        assert first.response_body == "not "  # bounded by LATHE_WEBHOOK_RESPONSE_BYTES
        assert delivery.deliver_due(settings) == 0  # not due before its backoff
        time.sleep(0.3)
        assert delivery.deliver_due(settings) == 1
        assert (_delivery(settings).status, _delivery(settings).attempts) == ("failed", 2)
        assert delivery.deliver_due(settings) == 0
        ids = {r.headers["webhook-id"] for r in hook.got}
        assert ids == {first.event_id} and len(hook.got) == 2
    with session_scope(url) as session:  # the log is bounded in time
        assert delivery.prune(session, settings) == 0
        later = settings.model_copy(
            update={"webhooks": settings.webhooks.model_copy(update={"log_retention_s": 1e-6})}
        )
        assert delivery.prune(session, later) == 1


def test_backoff_doubles_up_to_its_cap():
    s = Settings(webhooks={"retry_base_s": 10, "retry_max_s": 60})
    assert [delivery.backoff_s(s, n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_urls_into_the_servers_own_networks_are_refused(settings):
    for url in ("http://169.254.169.254/latest", "http://[fe80::1]/x", "http://0.0.0.0/"):
        with pytest.raises(urls.UrlRefused, match="never allowed"):
            urls.check(url, allow_private=True)
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.1/", "http://localhost/"):
        with pytest.raises(urls.UrlRefused, match="LATHE_ALLOW_PRIVATE_URLS"):
            urls.check(url, allow_private=False)
        urls.check(url, allow_private=True)
    with session_scope(settings.resolved_database_url) as session:
        with pytest.raises(InvalidRequest) as bad:
            endpoints.create_endpoint(
                session,
                settings,
                "org-1",
                "x",
                "http://user:pw@example.com/",
                ["fine_tuning.job.failed"],
            )
        assert bad.value.param == "url"


def test_the_event_commits_with_the_status_change_or_not_at_all(settings):
    from core.jobs.states import JobStatus, transition
    from core.persistence.models import Job

    url = settings.resolved_database_url
    with session_scope(url) as session:
        endpoints.create_endpoint(
            session, settings, "org-1", "ci", "http://127.0.0.1:9/", ["fine_tuning.job.cancelled"]
        )
        session.add(
            Job(id="ftjob-1", organization_id="org-1", model="m", base_model="m", spec={},
                status="queued", training_file="file-1", seed=1)
        )  # fmt: skip
    with pytest.raises(RuntimeError), session_scope(url) as session:  # a crash before commit
        assert transition(session, "ftjob-1", JobStatus.CANCELLED)
        raise RuntimeError("the process died here")
    with session_scope(url) as session:
        assert session.query(WebhookDelivery).count() == 0
        assert session.get(Job, "ftjob-1").status == "queued"
        assert transition(session, "ftjob-1", JobStatus.CANCELLED)
        assert not transition(session, "ftjob-1", JobStatus.CANCELLED)  # moved once: one event
    row = _delivery(settings)
    assert (row.event_type, row.payload["data"], row.status) == (
        "fine_tuning.job.cancelled",
        {"id": "ftjob-1"},
        "pending",
    )
