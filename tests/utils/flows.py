"""The user's flow, written once and driven against each deployment mode."""

from __future__ import annotations

import json
import time
from pathlib import Path

from openai import OpenAI

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid")]

# Enough to memorise four answers on the tiny model; chosen on the CPU (final loss ~0.003).
LEARN_HYPERPARAMETERS = {"n_epochs": 40, "learning_rate": 3e-3, "batch_size": 4}
LEARN_ADAPTER = {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0}


def capitals_jsonl(path: Path) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What is the capital of {country}?"},
                {"role": "assistant", "content": city},
            ]
        }
        for country, city in CAPITALS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def wait_job(client: OpenAI, job_id: str, timeout: float = 300, until=None):
    """Poll until the job is terminal (or `until(job)`), recording every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
        if job.status in ("succeeded", "failed", "cancelled") or (until and until(job)):
            return job, seen
        time.sleep(0.3)
    raise TimeoutError(f"job {job_id} still {seen[-1]} after {timeout}s (saw {seen})")


def train_capitals(
    client: OpenAI, tmp: Path, suffix: str = "capitals", hyperparameters: dict | None = None
):
    """Upload the capitals twice (to train on, and to validate on) and start a job that learns
    them: (training file, validation file, job)."""
    path = capitals_jsonl(tmp / "train.jsonl")
    train = client.files.create(file=path.open("rb"), purpose="fine-tune")
    valid = client.files.create(file=path.open("rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=train.id,
        validation_file=valid.id,
        suffix=suffix,
        seed=7,
        extra_body={
            "adapter": LEARN_ADAPTER,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": hyperparameters or LEARN_HYPERPARAMETERS},
            },
        },
    )
    return train, valid, job
