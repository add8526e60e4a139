"""Benchmarks on every kept checkpoint and select_best, in process (SQLite + local storage): a
tiny LoRA job with two kept checkpoints reports each checkpoint's lm-eval metrics on a
multiple-choice and a perplexity task; select_best by the perplexity task's word_perplexity
(mode max: the least trained weights, so the choice is a checkpoint, not the final model)
names the chosen step, and the published fine_tuned_model is that checkpoint's weights.
Fields that cannot apply are refused naming them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from core.auth import get_or_create_org
from core.errors import InvalidRequest
from core.files import store_local_file
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.model_store import ModelStore, StoredModel
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, JobEvent, Model
from core.registry import sync_base_models
from core.runs.runner import run_job
from core.settings import Settings
from core.storage import get_storage
from tests.utils.flows import CAPITALS, LEARN_ADAPTER, capitals_jsonl

HP = {"n_epochs": 6, "batch_size": 4, "learning_rate": 3e-3, "checkpoint_interval": 2}
PROMPT = "<|user|>\nWhat is the capital of {}?<|end|>\n<|assistant|>\n"
CITIES = [city for _, city in CAPITALS]


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def setup(tmp_path, model_cache):
    torch.set_num_threads(1)
    (tmp_path / "data").mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        model_cache_dir=model_cache,
        device="cpu",
        jobs={"max_checkpoints": 2},
    )
    upgrade(settings.resolved_database_url)
    storage = get_storage(settings)
    mc = [
        {"query": PROMPT.format(c), "choices": CITIES, "gold": i}
        for i, (c, _) in enumerate(CAPITALS)
    ]
    ppl = [{"text": PROMPT.format(c) + city + "<|end|>\n"} for c, city in CAPITALS]
    with session_scope(settings.resolved_database_url) as s:
        org = get_or_create_org(s, "ckpt-evals")
        sync_base_models(s, settings)

        def store(name: str, path: Path, purpose: str, fmt: str):
            return store_local_file(s, storage, org.id, path, purpose, format=fmt, n_examples=4).id

        files = {
            "train": store("t", capitals_jsonl(tmp_path / "t.jsonl"), "fine-tune", "chat"),
            "mc": store("mc", _rows(tmp_path / "mc.jsonl", mc), "evals", "multiple_choice"),
            "ppl": store("ppl", _rows(tmp_path / "ppl.jsonl", ppl), "evals", "perplexity"),
        }
        return settings, org.id, files


def _spec(files: dict, evaluation: dict) -> JobCreate:
    return JobCreate.model_validate(
        {
            "model": "tiny-llama",
            "training_file": files["train"],
            "seed": 3,
            "adapter": LEARN_ADAPTER,
            "method": {"type": "supervised", "supervised": {"hyperparameters": HP}},
            "evaluation": evaluation,
        }
    )


def test_checkpoints_are_benchmarked_and_the_best_is_published(setup):
    settings, org_id, files = setup
    url = settings.resolved_database_url
    best = {"task": files["ppl"], "metric": "word_perplexity", "mode": "max"}
    evaluation = {
        "benchmark_files": [files["mc"], files["ppl"]],
        "benchmark_checkpoints": True,
        "select_best": best,
    }
    with session_scope(url) as s:
        job_id = create_job(s, org_id, _spec(files, evaluation)).id
    run_job(settings, job_id)
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job.status == "succeeded", job.error
        found = job.evaluation["benchmarks"]
        final = s.get(Model, job.fine_tuned_model)
        final_model = StoredModel.of(final)
        events = list(s.scalars(select(JobEvent.message).where(JobEvent.job_id == job_id)))
    rows = found["checkpoints"]
    assert [r["step"] for r in rows] == [4, 6]  # LATHE_MAX_CHECKPOINTS=2 of steps 2, 4, 6
    for row in rows:
        assert row["fine_tuned_model_checkpoint"].endswith(f":ckpt-step-{row['step']}")
        assert set(row["tasks"][files["mc"]]) >= {"acc", "acc_norm"}
    ppl = [r["tasks"][files["ppl"]]["word_perplexity"] for r in rows]
    assert ppl[0] > ppl[1]  # training lowered the loss on its own answers
    assert ppl[1] == pytest.approx(found["tasks"][files["ppl"]]["tuned"]["word_perplexity"])
    chosen = found["selected"]
    assert chosen["step"] == 4 and chosen["value"] == ppl[0]
    assert any(m.startswith("Selected the checkpoint at step 4") for m in events)
    [bench] = [m for m in events if m.startswith("Benchmarks (lm-eval")]
    assert "checkpoint step 4: " in bench and "checkpoint step 6: " in bench
    store = ModelStore(settings, get_storage(settings))
    served = store.artifact_dir(final_model)
    ckpt = store.artifact_dir(
        StoredModel(chosen["fine_tuned_model_checkpoint"], "tiny-llama", _ckpt_key(url, chosen))
    )
    weights = [p.name for p in ckpt.iterdir() if p.suffix == ".safetensors"]
    assert weights and all((served / n).read_bytes() == (ckpt / n).read_bytes() for n in weights)
    from cli.client.jobs import _checkpoints_line  # what `lathe jobs get` appends

    assert _checkpoints_line(found).startswith("; 2 checkpoints scored; selected step 4 by word")


def _ckpt_key(url: str, chosen: dict) -> str:
    with session_scope(url) as s:
        return s.get(Model, chosen["fine_tuned_model_checkpoint"]).artifact_key


def test_fields_that_cannot_apply_are_refused(setup):
    settings, org_id, files = setup
    mc, ppl = files["mc"], files["ppl"]
    bench = {"benchmark_files": [mc], "benchmark_checkpoints": True}
    cases = [
        ({"benchmark_checkpoints": True}, "evaluation.benchmark_checkpoints"),
        (
            {"benchmark_files": [mc], "select_best": {"task": mc, "metric": "acc"}},
            "evaluation.select_best",
        ),
        (bench | {"select_best": {"task": ppl, "metric": "acc"}}, "evaluation.select_best.task"),
        (
            bench | {"select_best": {"task": mc, "metric": "exact_match"}},
            "evaluation.select_best.metric",
        ),
    ]
    for evaluation, param in cases:
        with (
            session_scope(settings.resolved_database_url) as s,
            pytest.raises(InvalidRequest) as exc,
        ):
            create_job(s, org_id, _spec(files, evaluation))
        assert exc.value.param == param, (evaluation, exc.value)
