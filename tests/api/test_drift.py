"""Drift monitoring end to end: a real `lathe serve` (embedded SQLite) and `lathe inference`
(tiny-llama on CPU). Chat answers to an opted-in organization's fine-tuned model are sampled
by the API's hook; prompts from another distribution than the training rows score higher.

No training: the model row is written as a job would publish it, with its job's training
file uploaded through the API and no artifact (so the service serves the base weights).
"""

from __future__ import annotations

import io
import json
import random
import secrets
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from core.drift import samples
from core.persistence.db import session_scope
from core.persistence.drift_models import DriftSample
from core.persistence.models import File, Job, Model, utcnow
from core.settings import Settings
from tests.utils.api_server import api_server
from tests.utils.processes import Proc, base_env, free_port, lathe, run_lathe, wait_http
from tests.utils.stack import base_models
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.skipif("minilm" not in base_models(), reason="needs the MiniLM wheel")

DISHES = ["chicken", "potatoes", "salmon", "carrots", "lamb", "bread", "rice", "tofu", "beans"]
METHODS = ["bake", "roast", "simmer", "fry", "grill", "steam", "braise"]
COOKING = [
    "How long should I {m} the {d} at {n} degrees?",
    "What spices go well when I {m} {d}?",
    "Can I {m} frozen {d} without thawing it first?",
    "My {d} came out dry after I tried to {m} it for {n} minutes, what went wrong?",
]
TOPICS = ["python", "rust", "postgres", "kubernetes", "git", "docker", "javascript", "linux"]
ERRORS = ["segfault", "timeout", "deadlock", "memory leak", "null pointer", "race condition"]
CODING = [
    "Why does my {t} service crash with a {e} after {n} requests?",
    "How do I debug a {e} in {t} code?",
    "Explain the {t} stack trace: {e} at line {n}.",
]


def cooking(rng: random.Random) -> str:
    return rng.choice(COOKING).format(
        m=rng.choice(METHODS), d=rng.choice(DISHES), n=rng.randrange(10, 250)
    )


def coding(rng: random.Random) -> str:
    return rng.choice(CODING).format(
        t=rng.choice(TOPICS), e=rng.choice(ERRORS), n=rng.randrange(10, 9000)
    )


def training_rows(n: int = 120) -> bytes:
    rng = random.Random(1)
    rows = [
        {"messages": [{"role": "user", "content": cooking(rng)},
                      {"role": "assistant", "content": "About twenty minutes, turning once."}]}
        for _ in range(n)
    ]  # fmt: skip
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache: Path):
    root = tmp_path_factory.mktemp("drift")
    port = free_port()
    models = {"tiny-llama": base_models()["tiny-llama"], "minilm": base_models()["minilm"]}
    settings = dict(
        base_models=json.dumps(models),
        model_cache_dir=str(model_cache),
        inference_url=f"http://127.0.0.1:{port}",
        drift_embedding_model="minilm",
        drift_min_samples="20",
        drift_samples_per_model="60",
    )
    with api_server(root, **settings) as s:
        infer = Proc(lathe("inference", "--port", str(port)), s.env, root / "infer.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/health", infer)
            yield s
        finally:
            infer.stop()


def db(server) -> Settings:
    """The server's database, as the test process reaches it."""
    return Settings(data_dir=server.data_dir, drift={"samples_per_model": 60, "opt_in_cache_s": 0})


def fine_tuned(server, client: httpx.Client, name: str) -> tuple[str, str]:
    """(model id, org id): a fine-tuned model row as a succeeded job leaves it, on an
    uploaded training file."""
    up = client.post("/files", data={"purpose": "fine-tune"},
                     files={"file": ("train.jsonl", io.BytesIO(training_rows()))})  # fmt: skip
    assert up.status_code == 200, up.text
    file_id = up.json()["id"]
    job_id, model_id = f"ftjob-{secrets.token_hex(6)}", f"ft:tiny-llama:acme:{name}"
    with session_scope(db(server).resolved_database_url) as session:
        org_id = session.get_one(File, file_id).organization_id
        session.add(Job(id=job_id, organization_id=org_id, model="tiny-llama",
                        base_model="tiny-llama", status="succeeded", spec={}, seed=0,
                        training_file=file_id, fine_tuned_model=model_id))  # fmt: skip
        session.add(Model(id=model_id, organization_id=org_id, kind="fine_tuned",
                          base_model="tiny-llama", job_id=job_id))  # fmt: skip
    return model_id, org_id


def stored(server, model_id: str) -> list[DriftSample]:
    with session_scope(db(server).resolved_database_url) as session:
        query = select(DriftSample).where(DriftSample.model_id == model_id)
        rows = list(session.scalars(query.order_by(DriftSample.id)))
        session.expunge_all()
        return rows


def test_reports_say_why_they_cannot_score(server):
    client = server.client()
    model_id, _ = fine_tuned(server, client, "states")
    assert client.get("/organization/drift").json()["enabled"] is False
    assert client.get(f"/models/{model_id}/drift").json()["status"] == "not_enabled"
    other = server.client(server.new_key("globex"))
    assert other.get(f"/models/{model_id}/drift").status_code == 404  # not theirs
    assert client.get("/models/ft:nope/drift").status_code == 404
    assert client.post("/organization/drift", json={"enabled": "maybe"}).status_code == 400
    assert client.post("/organization/drift", json={"enabled": True}).json()["enabled"] is True
    assert client.get("/models/tiny-llama/drift").json()["status"] == "no_reference"
    few = client.get(f"/models/{model_id}/drift").json()
    assert few["status"] == "insufficient_samples" and few["window"]["samples"] == 0


def test_chat_answers_are_sampled_once_opted_in(server):
    from openai import OpenAI

    client = server.client()
    model_id, _ = fine_tuned(server, client, "hooked")
    openai = OpenAI(base_url=server.url, api_key=server.key, max_retries=0)
    ask = [{"role": "user", "content": "How long should I roast the carrots?"}]
    client.post("/organization/drift", json={"enabled": False})
    openai.chat.completions.create(model=model_id, messages=ask, max_tokens=3)
    client.post("/organization/drift", json={"enabled": True})
    answer = openai.chat.completions.create(model=model_id, messages=ask, max_tokens=3)
    openai.completions.create(model=model_id, prompt="Bake the bread at", max_tokens=2)
    rows = wait_for(lambda: stored_at_least(server, model_id, 2), 20, "two samples stored")
    assert [r.prompt for r in rows] == [ask[0]["content"], "Bake the bread at"]
    assert rows[0].completion_tokens == answer.usage.completion_tokens
    assert rows[0].prompt_tokens == answer.usage.prompt_tokens
    assert rows[0].completion_chars == len(answer.choices[0].message.content)


def stored_at_least(server, model_id: str, n: int) -> list | None:
    """The model's samples once there are `n` (the hook records after the answer is sent)."""
    rows = stored(server, model_id)
    return rows if len(rows) >= n else None


def test_shifted_traffic_scores_higher_than_traffic_like_training(server):
    client = server.client()
    client.post("/organization/drift", json={"enabled": True})
    steady, org_id = fine_tuned(server, client, "steady")
    shifted, _ = fine_tuned(server, client, "shifted")
    rng = random.Random(2)
    answer = {"choices": [{"message": {"content": "Twenty minutes."}}],
              "usage": {"prompt_tokens": 12, "completion_tokens": 4}}  # fmt: skip
    with session_scope(db(server).resolved_database_url) as session:
        for _ in range(40):  # what the API's hook records for each answered request
            samples.record(session, db(server), org_id, steady, [cooking(rng)], answer)
            samples.record(session, db(server), org_id, shifted, [coding(rng)], answer)
    calm, moved = (client.get(f"/models/{m}/drift", timeout=180).json() for m in (steady, shifted))
    assert calm["status"] == moved["status"] == "ok", (calm, moved)
    assert moved["embedding"]["score"] > calm["embedding"]["score"] + 0.2, (calm, moved)
    assert moved["embedding"]["drifted"] and moved["embedding"]["encoder"] == "minilm"
    assert moved["tokens"]["js_distance"] > calm["tokens"]["js_distance"]
    assert moved["tokens"]["unseen_word_rate"] > calm["tokens"]["unseen_word_rate"]
    assert calm["window"]["samples"] == 40 and calm["reference"]["rows"] == 120
    assert calm["tokens"]["completion_tokens"]["mean"] == 4
    print("drift scores: steady", calm["embedding"], "shifted", moved["embedding"])
    metrics = httpx.get(f"{server.base}/metrics").text
    gauge = f'lathe_drift_score{{model="{shifted}"}} {moved["embedding"]["score"]}'
    assert gauge in metrics
    user = base_env(LATHE_BASE_URL=server.base, LATHE_API_KEY=server.key, COLUMNS="200",
                    XDG_CONFIG_HOME=str(server.data_dir / "config"))  # fmt: skip
    shown = run_lathe(user, "models", "drift", shifted)
    assert f"{moved['embedding']['score']}" in shown and "drifted" in shown, shown


def test_samples_are_capped_per_model_and_expire(server):
    client = server.client()
    client.post("/organization/drift", json={"enabled": True})
    model_id, org_id = fine_tuned(server, client, "bounded")
    settings = db(server)
    with session_scope(settings.resolved_database_url) as session:
        for i in range(70):
            samples.record(session, settings, org_id, model_id, [f"prompt {i} " * 300], None)
    rows = stored(server, model_id)
    assert len(rows) == 60 and rows[0].prompt.startswith("prompt 10 ")
    assert len(rows[0].prompt) == settings.drift.prompt_chars < rows[0].prompt_chars
    with session_scope(settings.resolved_database_url) as session:
        old = utcnow() - timedelta(days=settings.drift.retention_days + 1)
        session.execute(update(DriftSample).where(DriftSample.id == rows[0].id)
                        .values(created_at=old))  # fmt: skip
        assert samples.prune_expired(session, settings) == 1
    assert len(stored(server, model_id)) == 59
    client.post("/organization/drift", json={"enabled": False})  # opting out deletes them
    assert stored(server, model_id) == []
