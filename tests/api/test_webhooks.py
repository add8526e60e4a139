"""Webhooks with the official `openai` SDK: endpoints registered with `client.webhooks.*`,
real jobs' events received by a local HTTP server and verified with `client.webhooks.unwrap`,
a receiver that refuses at first retried, the attempts in the delivery log."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.utils.flows import capitals_jsonl, wait_job
from tests.utils.webhook_receiver import receiver

ALL = [
    "fine_tuning.job.succeeded",
    "fine_tuning.job.failed",
    "fine_tuning.job.cancelled",
    "fine_tuning.job.paused",
    "fine_tuning.job.checkpoint.created",
]


def test_endpoints_are_managed_with_the_sdk(stack):
    client = stack.client()
    assert client.webhooks.event_types.list().data == ALL
    with receiver() as hook:
        made = client.webhooks.create(name="ci", url=hook.url, event_types=ALL[:2])
        assert made.signing_secret.startswith("whsec_")
        got = client.webhooks.retrieve(made.id)
        assert "signing_secret" not in got.model_dump() and got.event_types == ALL[:2]
        assert got.signing_secret_hint.endswith(made.signing_secret[-4:])
        assert made.id in [e.id for e in client.webhooks.list()]
        assert made.id not in [e.id for e in stack.client(stack.other_key).webhooks.list()]
        with pytest.raises(openai.NotFoundError):
            stack.client(stack.other_key).webhooks.retrieve(made.id)
        assert client.webhooks.update(made.id, name="renamed").name == "renamed"
        rotated = client.webhooks.rotate_secret(made.id, keep_old_secret_active_for_24_hours=True)
        assert rotated.signing_secret != made.signing_secret
        result = client.webhooks.test(made.id, event_type="fine_tuning.job.succeeded")
        assert result.status_code == 200
        # during the grace period both the new and the old secret verify
        sent = hook.got[-1]
        for secret in (rotated.signing_secret, made.signing_secret):
            assert client.webhooks.unwrap(sent.body, sent.headers, secret=secret).data.id
        assert client.webhooks.delete(made.id).deleted
    with pytest.raises(openai.BadRequestError) as bad:
        client.webhooks.create(name="x", url=hook.url, event_types=["batch.completed"])
    assert bad.value.body["param"] == "event_types.0"
    for url in ("http://169.254.169.254/latest/meta-data", "ftp://example.com/x"):
        with pytest.raises(openai.BadRequestError) as bad:
            client.webhooks.create(name="x", url=url, event_types=ALL[:1])
        assert bad.value.body["param"] == "url"


def test_job_events_arrive_signed_and_a_refusing_receiver_is_retried(stack, tmp_path):
    client = stack.client()
    f = client.files.create(
        file=capitals_jsonl(tmp_path / "t.jsonl").open("rb"), purpose="fine-tune"
    )
    with receiver(fail_first=1) as hook:
        endpoint = client.webhooks.create(name="jobs", url=hook.url, event_types=ALL)
        body = {"method": {"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 2, "batch_size": 4}}}}  # fmt: skip
        trained = client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=f.id, extra_body=body
        )
        stopped = client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=f.id, extra_body=body
        )
        client.fine_tuning.jobs.pause(stopped.id)
        client.fine_tuning.jobs.cancel(stopped.id)
        assert wait_job(client, trained.id)[0].status == "succeeded"

        def by_type(received) -> dict:
            return {json.loads(r.body)["type"]: r for r in received}

        wanted = {"fine_tuning.job.succeeded", "fine_tuning.job.cancelled"}
        got = by_type(hook.wait(lambda r: wanted <= set(by_type(r))))
        secret = endpoint.signing_secret
        done, cancelled = got["fine_tuning.job.succeeded"], got["fine_tuning.job.cancelled"]
        event = client.webhooks.unwrap(done.body, done.headers, secret=secret)
        assert type(event).__name__ == "FineTuningJobSucceededWebhookEvent"
        assert event.data.id == trained.id
        event = client.webhooks.unwrap(cancelled.body, cancelled.headers, secret=secret)
        assert type(event).__name__ == "FineTuningJobCancelledWebhookEvent"
        assert event.data.id == stopped.id
        paused = got["fine_tuning.job.paused"]  # Lathe's own types are signed the same way
        client.webhooks.verify_signature(paused.body, paused.headers, secret=secret)
        assert json.loads(paused.body)["data"]["id"] == stopped.id
        checkpoint = json.loads(got["fine_tuning.job.checkpoint.created"].body)["data"]
        assert checkpoint["id"] == trained.id and checkpoint["step_number"] >= 1
        assert checkpoint["fine_tuning_checkpoint_id"].startswith("ftckpt_")
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.unwrap(cancelled.body, cancelled.headers, secret="whsec_" + "A" * 44)

        # the first request was refused: the same event (same webhook-id) came again
        first = hook.got[0].headers["webhook-id"]
        assert [r.headers["webhook-id"] for r in hook.got].count(first) == 2
        retried = _delivery(client, endpoint.id, first, lambda d: d["status"] != "pending")
        assert retried["status"] == "succeeded" and retried["attempts"] == 2
        assert retried["response_status_code"] == 200


def _delivery(client, endpoint_id: str, event_id: str, until, timeout: float = 30) -> dict:
    """The endpoint's delivery of `event_id` from the delivery log, once `until(it)`."""
    deadline = time.monotonic() + timeout
    while True:
        log = client.get(f"/webhook_endpoints/{endpoint_id}/deliveries", cast_to=object)
        found = next(d for d in log["data"] if d["event_id"] == event_id)
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
