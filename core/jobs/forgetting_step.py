"""The forgetting check as a step of the job run: after the method saved its artifact and
before publishing, score the general set on the starting and the tuned model
(core.evaluation.forgetting), put the report in the job's `evaluation.forgetting`, and say so
in an event — a warning when the loss rose past the job's threshold."""

from __future__ import annotations

from pathlib import Path

from core.data import DataError, ensure_valid, read_dataset
from core.data.examples import Example
from core.evaluation import forgetting
from core.jobs.spec import JobCreate
from core.methods.base import Reporter, TrainingResult
from core.persistence.models import File, Job
from core.retry import db_retry
from core.settings import Settings
from core.storage import worker_storage

CAUSAL_LM = "causal_lm"


def run_forgetting_check(
    settings: Settings,
    job: Job,
    spec: JobCreate,
    result: TrainingResult,
    base_path: Path,
    parent: Path | None,
    reporter: Reporter,
    work: Path,
    device: str,
) -> None:
    """Adds `forgetting` to `result.evaluation` when the job asks for the check."""
    options = spec.evaluation
    if result.model_task != CAUSAL_LM or result.stopped_early:
        return
    if not forgetting.wanted(options.forgetting_check, job.base_model, options.general_file):
        return
    if options.general_file is not None:
        examples, source = _general_file(settings, options.general_file, work), options.general_file
    else:
        examples, source = forgetting.builtin_general_set(), "builtin"
    found = forgetting.check(
        base_path,
        parent,
        result.artifact_dir,
        examples,
        threshold=options.forgetting_threshold,
        source=source,
        device=device,
    )
    result.evaluation = {**(result.evaluation or {}), "forgetting": found}
    level = "warn" if found["exceeded"] else "info"
    reporter.message(forgetting.message(found), level=level, data={"forgetting": found})


def _general_file(settings: Settings, file_id: str, work: Path) -> list[Example]:
    from core.jobs.runner import JobFailure  # the runner's own failure type

    param = "evaluation.general_file"

    def lookup(session):
        row = session.get(File, file_id)
        if row is not None:
            session.expunge(row)
        return row

    row = db_retry(settings, "file lookup", lookup)
    if row is None:
        raise JobFailure("file_not_found", f"{param} {file_id} was deleted", param)
    path = worker_storage(settings).download(row.storage_key, work / "general" / row.filename)
    report, examples = read_dataset(path, row.filename, method="supervised")
    try:
        ensure_valid(report)
    except DataError as exc:
        raise JobFailure("invalid_general_file", f"{file_id}: {exc}", param) from exc
    return examples
