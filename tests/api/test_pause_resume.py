"""Pause a running job and resume it with the openai client: the worker checkpoints the step it
stopped at, the resumed run continues from there, and the finished model serves."""

from __future__ import annotations

import openai
import pytest

from core.jobs.service import stale_jobs
from core.persistence.db import session_scope
from tests.utils.flows import (
    CAPITALS,
    LEARN_ADAPTER,
    LEARN_HYPERPARAMETERS,
    capitals_jsonl,
    wait_job,
)

EPOCHS = 150
"""4 examples, batch 4: one step per epoch. The pause must land mid-run even on an idle
machine, where a step takes ~30 ms: the test sees the first step ~0.3 s late at worst (its
poll), and the run reads its status once a second, so the pause lands some 50 steps in."""


def _messages(client, job_id: str) -> list:
    """Oldest first (the list is newest first; iterating it follows every page)."""
    return list(client.fine_tuning.jobs.list_events(job_id, limit=100))[::-1]


def test_pause_saves_a_checkpoint_and_resume_continues_from_it(stack, pg_url, tmp_path):
    client = stack.client()
    f = client.files.create(
        file=capitals_jsonl(tmp_path / "t.jsonl").open("rb"), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        seed=7,
        extra_body={
            "adapter": LEARN_ADAPTER,
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {
                        **LEARN_HYPERPARAMETERS,
                        "n_epochs": EPOCHS,
                        "checkpoint_interval": 1000,  # the pause's is the only checkpoint
                    }
                },
            },
        },
    )
    wait_job(  # running and past its first step
        client,
        job.id,
        until=lambda j: (
            j.status == "running"
            and any(e.type == "metrics" for e in client.fine_tuning.jobs.list_events(j.id).data)
        ),
    )
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"

    def stopped(j) -> bool:
        return any(
            e.message.startswith("Fine-tuning job paused at step") for e in _messages(client, j.id)
        )

    paused, _ = wait_job(client, job.id, until=stopped)
    assert paused.status == "paused" and paused.fine_tuned_model is None
    [event] = [
        e for e in _messages(client, job.id) if e.message.startswith("Fine-tuning job paused at")
    ]
    step = event.data["step"]
    assert 0 < step < EPOCHS
    [checkpoint] = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.step_number == step
    with session_scope(pg_url) as s:  # the reconciler leaves a paused job alone
        assert job.id not in {j.id for j in stale_jobs(s, older_than_s=-1)}
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.pause(job.id)
    assert "paused" in exc.value.response.json()["error"]["message"]

    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    done, _ = wait_job(client, job.id)
    assert done.status == "succeeded", done.error

    messages = _messages(client, job.id)
    texts = [e.message for e in messages]
    resumed = texts.index("Fine-tuning job resumed")
    assert (
        texts.index(event.message)
        < resumed
        < texts.index(f"Resuming from the checkpoint at step {step}")
    )
    steps = [e.data["step"] for e in messages if e.type == "metrics"]
    assert steps == list(range(1, EPOCHS + 1))  # no step lost, none repeated
    assert {e.data["total_steps"] for e in messages if e.type == "metrics"} == {EPOCHS}
    for e in messages[resumed:]:
        assert e.type != "metrics" or e.data["step"] > step  # the resumed run starts after it
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.pause(job.id)
    assert exc.value.response.json()["error"]["message"].endswith(
        "is succeeded and cannot be paused"
    )
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.resume(job.id)

    country, city = CAPITALS[0]
    reply = client.chat.completions.create(
        model=done.fine_tuned_model,
        temperature=0,
        max_tokens=8,
        messages=[{"role": "user", "content": f"What is the capital of {country}?"}],
    )
    assert reply.choices[0].message.content == city
