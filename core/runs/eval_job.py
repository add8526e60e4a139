"""`method.type: "eval"`: a job that trains nothing and benchmarks a model.

It scores `model` — a base, an `ft:` model or one of its checkpoints — through lm-eval on its
task files (`training_file` and any `evaluation.benchmark_files`, purpose 'evals'), and, for a
fine-tuned model, the weights it was trained from, so the two compare. The report lands on the
job as `benchmarks` (`{"base": ..., "tuned": ...}` per task; a base model has only "base"), and
the job succeeds without producing a model.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from core.evaluation import benchmarks, forgetting
from core.jobs.dependencies import on_succeeded
from core.jobs.events import add_event
from core.jobs.states import JobStatus, transition
from core.jobspec.job import JobCreate
from core.retry import db_retry
from core.runs.context import RunContext
from core.runs.post_training import benchmark_report
from core.runs.weights import start_weights  # the same weights a training job would load


def task_files(spec: JobCreate) -> list[str]:
    """training_file first, then benchmark_files, each once."""
    return list(dict.fromkeys([spec.training_file, *(spec.evaluation.benchmark_files or [])]))


def run_eval_job(run: RunContext) -> list[str]:
    """Benchmark the job's model, record the report and `succeeded`; returns the jobs this
    success made runnable."""
    from core.model_store import load_artifact

    weights, device = start_weights(run), run.device
    base_path, artifact = weights.path, weights.parent
    if artifact is None:
        loaders = {"base": lambda: _plain(base_path, device)}
    else:
        tokenizers = []

        def tuned() -> tuple:
            model, tokenizer = load_artifact(base_path, artifact, device=device)
            tokenizers.append(tokenizer)
            return model, tokenizer

        loaders = {
            "tuned": tuned,
            "base": lambda: (forgetting.load_start(base_path, None, device), tokenizers[0]),
        }
    found = benchmark_report(run.settings, task_files(run.spec), run.work, loaders)
    evaluation = {"benchmarks": found}

    def record(session: Session) -> list[str] | None:
        if not transition(
            session, run.job_id, JobStatus.SUCCEEDED, trained_tokens=0, evaluation=evaluation
        ):
            return None  # cancelled meanwhile
        add_event(session, run.job_id, benchmarks.message(found), data=evaluation)
        add_event(session, run.job_id, "The job has successfully completed")
        return on_succeeded(session, run.job_id)

    return db_retry(run.settings, "eval job success", record) or []


def _plain(path: Path, device: str) -> tuple:
    from transformers import AutoTokenizer

    return forgetting.load_start(path, None, device), AutoTokenizer.from_pretrained(path)
