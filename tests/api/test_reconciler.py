"""Redis only carries "run job X": a job whose message was lost still runs, because the API
re-enqueues what the database says is waiting."""

from __future__ import annotations

from datetime import timedelta

from core.persistence.db import session_scope
from core.persistence.models import Job, utcnow
from tests.utils.flows import capitals_jsonl, wait_job


def test_job_with_lost_message_is_reenqueued_and_runs(stack, tmp_path):
    client = stack.client()
    f = client.files.create(
        file=capitals_jsonl(tmp_path / "t.jsonl").open("rb"), purpose="fine-tune"
    )
    template = client.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    client.fine_tuning.jobs.cancel(template.id)
    url = stack.env["LATHE_DATABASE_URL"]
    with session_scope(url) as session:  # a job the queue never heard of, waiting for a while
        src = session.get(Job, template.id)
        spec = dict(src.spec)
        spec["method"] = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}}
        session.add(
            Job(
                id="ftjob-lostmessage" + template.id[-8:],
                organization_id=src.organization_id,
                model="tiny-llama",
                base_model="tiny-llama",
                status="queued",
                spec=spec,
                training_file=f.id,
                seed=1,
                result_files=[],
                enqueued_at=utcnow() - timedelta(minutes=5),
            )
        )
    done, _ = wait_job(client, "ftjob-lostmessage" + template.id[-8:], timeout=180)
    assert done.status == "succeeded", (done.error, stack.api.tail())
    assert "re-enqueued" in stack.api.log.read_text()
