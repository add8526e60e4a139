"""The edges of a job's life, on the real stack: nothing after a cancel, a waiting job says
what it waits for, events never name a pruned checkpoint silently, and deleting a model takes
its checkpoints with it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.utils.flows import capitals_jsonl, wait_job

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _job(client, file_id: str, suffix: str, **hyperparameters):
    return client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=file_id,
        suffix=suffix,
        seed=3,
        extra_body={
            "adapter": {"type": "lora", "r": 4},
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {"batch_size": 1, "packing": False, **hyperparameters}
                },
            },
        },
    )


@pytest.fixture(scope="module")
def training_file(stack, tmp_path_factory):
    path = capitals_jsonl(tmp_path_factory.mktemp("edges") / "train.jsonl")
    return stack.client().files.create(file=path.open("rb"), purpose="fine-tune")


def _events(client, job_id: str) -> list:
    """Every event, oldest first (the pages come newest first)."""
    return list(reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=100))))


def _training_process_alive(job_id: str) -> bool:
    """Whether a worker's training child (`python -m core.runs.train_process <job id>`) runs."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"core.runs.train_process" in argv and job_id.encode() in argv:
            return True
    return False


def test_nothing_follows_a_cancel_and_a_waiting_job_says_why(stack, training_file):
    client = stack.client()
    job = _job(client, training_file.id, "cancelled", n_epochs=250)  # 1,000 steps: never ends
    waiter = client.fine_tuning.jobs.create(model=job.id, training_file=training_file.id)
    assert waiter.status == "validating_files"  # OpenAI's status set on the wire
    assert waiter.model_extra["waiting_for"] == [job.id]
    said = [e for e in _events(client, waiter.id) if (e.data or {}).get("waiting_for")]
    assert said and job.id in said[0].message and "validating_files" in said[0].message

    deadline = time.monotonic() + 240
    while not any(e.type == "metrics" for e in _events(client, job.id)):
        assert time.monotonic() < deadline, stack.worker.tail()
        time.sleep(0.2)
    assert client.fine_tuning.jobs.retrieve(waiter.id).model_extra["waiting_for"] == [job.id]
    client.fine_tuning.jobs.cancel(job.id)
    while _training_process_alive(job.id):  # until the worker's training child has ended
        assert time.monotonic() < deadline, stack.worker.tail()
        time.sleep(0.2)

    events = _events(client, job.id)
    cancelled = [i for i, e in enumerate(events) if e.message == "Fine-tuning job cancelled"]
    assert cancelled and events[cancelled[0] + 1 :] == [], [e.message for e in events[-5:]]
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    failed, _ = wait_job(client, waiter.id, timeout=30)
    assert failed.status == "failed" and failed.error.code == "dependency_failed"
    assert failed.model_extra["waiting_for"] is None


def test_events_name_only_live_checkpoints_and_deleting_the_model_takes_them(stack, training_file):
    """LATHE_MAX_CHECKPOINTS is 3: 4 steps checkpointed at each prune the first."""
    client = stack.client()
    job = _job(client, training_file.id, "pruned", n_epochs=1, checkpoint_interval=1)
    done, _ = wait_job(client, job.id)
    assert done.status == "succeeded", (done.error, stack.worker.tail())

    events = _events(client, job.id)
    named = [e.data["fine_tuned_model_checkpoint"] for e in events
             if "fine_tuned_model_checkpoint" in (e.data or {})]  # fmt: skip
    pruned = {e.data["pruned_checkpoint"] for e in events if "pruned_checkpoint" in (e.data or {})}
    assert len(named) == 4 and pruned == {named[0]}
    for name in named:
        if name in pruned:
            with pytest.raises(openai.NotFoundError):
                client.models.retrieve(name)
        else:
            assert client.models.retrieve(name).id == name
    live = [c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(job.id)]
    assert sorted(live) == sorted(set(named) - pruned)

    assert client.models.delete(done.fine_tuned_model).deleted
    for name in live:
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(name)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    last = _events(client, job.id)[-1]
    assert last.data["deleted_model"] == done.fine_tuned_model
    assert sorted(last.data["deleted_checkpoints"]) == sorted(live)


def test_the_compose_api_healthcheck_passes_against_the_real_stack(stack):
    """docker-compose.yml's API healthcheck, run as the container runs it (port swapped)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["api"]["healthcheck"]["test"]
    port = stack.url.rsplit(":", 1)[1].split("/")[0]
    code = test[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert test[:3] == ["CMD", "python", "-c"] and code != test[-1]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    ready = httpx.get(stack.url.removesuffix("/v1") + "/ready", timeout=30)
    assert ready.json() == {
        "status": "ok", "checks": {"database": "ok", "broker": "ok", "storage": "ok"}
    }  # fmt: skip
