"""Pause and resume an RLHF job with the openai client on the production stack: a DPO job
(TRL's trainer on the supervised schedule; the recipes of every RLHF method are checked one by
one in tests/core/methods/test_rlhf_resume.py). The worker checkpoints the step it stopped at,
the checkpoint serves, the resumed run continues from the step after it, and the finished
model serves."""

from __future__ import annotations

import time

import openai
import pytest

from tests.utils.flows import wait_job
from tests.utils.rlhf import QUESTIONS, preference_rows, write_jsonl

pytestmark = pytest.mark.slow

LORA = {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0}
TOTAL = 60  # 24 pairs, batch 4: 6 steps an epoch. Long enough that the pause lands mid-run on
# an idle machine (a step takes ~40 ms; the worker reads the job's status once a second), short
# enough for a busy one (seconds a step); the pause's checkpoint is the only one.
HP = {"n_epochs": 10, "batch_size": 4, "learning_rate": 1e-3, "checkpoint_interval": 1000}


def _messages(client, job_id: str) -> list:
    """Oldest first (the list is newest first; iterating it follows every page)."""
    return list(client.fine_tuning.jobs.list_events(job_id, limit=100))[::-1]


def _upload(client, tmp_path) -> str:
    path = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(QUESTIONS, per_question=2))
    return client.files.create(file=path.open("rb"), purpose="fine-tune").id


def _paused_step(client, job_id: str) -> int:
    def stopped(j) -> bool:
        return any(
            e.message.startswith("Fine-tuning job paused at step") for e in _messages(client, j.id)
        )

    paused, _ = wait_job(client, job_id, until=stopped)
    assert paused.status == "paused" and paused.fine_tuned_model is None
    [event] = [
        e for e in _messages(client, job_id) if e.message.startswith("Fine-tuning job paused at")
    ]
    return event.data["step"]


@pytest.mark.timeout(900)  # a busy machine runs a step in seconds
def test_a_dpo_job_pauses_and_resumes_without_repeating_a_step(stack, tmp_path):
    client = stack.client()
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, tmp_path),
        seed=7,
        extra_body={"adapter": LORA, "method": {"type": "dpo", "dpo": {"hyperparameters": HP}}},
    )
    # Claimed: the worker polls the status at each step's end, so it stops at step 1 or later.
    wait_job(client, job.id, until=lambda j: j.status == "running")
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    step = _paused_step(client, job.id)
    assert 0 < step < TOTAL, stack.worker.tail()
    [checkpoint] = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.step_number == step
    reply = client.chat.completions.create(  # the paused checkpoint serves as it is
        model=checkpoint.fine_tuned_model_checkpoint,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=4,
    )
    assert reply.choices[0].message.content is not None

    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    started = time.monotonic()
    done, _ = wait_job(client, job.id, timeout=500)
    took = time.monotonic() - started
    print(f"DPO paused at step {step} of {TOTAL}; the resumed run took {took:.0f}s")
    assert done.status == "succeeded", (done.error, stack.worker.tail())

    messages = _messages(client, job.id)
    texts = [e.message for e in messages]
    resumed = texts.index("Fine-tuning job resumed")
    assert resumed < texts.index(f"Resuming from the checkpoint at step {step}")
    steps = [e.data["step"] for e in messages if e.type == "metrics"]
    assert steps == list(range(1, TOTAL + 1))  # no step lost, none repeated
    for e in messages[resumed:]:
        assert e.type != "metrics" or e.data["step"] > step  # the resumed run starts after it
    assert done.hyperparameters.model_extra["checkpoint_interval"] == 1000
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.resume(job.id)
    reply = client.chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert reply.choices[0].message.content is not None
