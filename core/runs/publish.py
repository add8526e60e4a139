"""What a finished run leaves: the artifact and result files stored, then the model row and
`succeeded` in one transaction — or, for a run stopped by a cancel or a pause, the resume state
kept or dropped. Upload first, then record: a row never points at bytes that are not there."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from core.files import store_local_file
from core.jobs.checkpoints import drop_resume_state, fine_tuned_model_name, latest_checkpoint
from core.jobs.dependencies import on_succeeded
from core.jobs.events import add_event
from core.jobs.states import JobStatus, transition
from core.jobspec.recipe import TrainingResult
from core.persistence.models import Job, Model
from core.retry import db_retry
from core.runs.context import RunContext
from core.runs.results import loss_curve_png, step_metrics_csv
from core.storage import Storage, put_dir


def publish(
    run: RunContext, result: TrainingResult, extra_results: Sequence[Path] = ()
) -> list[str]:
    """Upload first, then record: a row never points at bytes that are not there (bytes a
    failure leaves unrecorded are the sweeper's). The artifact's upload is retried for up to
    LATHE_UPLOAD_RETRY_S while it waits on this worker's disk. Returns the jobs waiting for this
    one that are now runnable. `extra_results`: more result files (an integration's run)."""
    settings, job = run.settings, run.job
    storage = run.storage()
    prefix = f"orgs/{job.organization_id}/models/{job.id}/artifact"
    if result.stopped_early:  # cancelled or paused: the API moved the job; nothing to publish
        db_retry(settings, "stop record", lambda s: _stopped(s, storage, job.id))
        return []
    name, results = None, list(extra_results)  # a method that only scores (eval): no model
    if result.model_task is not None:
        put_dir(run.storage(settings.jobs.upload_retry_s), prefix, result.artifact_dir)
        name = db_retry(settings, "model name", lambda s: fine_tuned_model_name(s, job))
        results = [*_training_results(result, f"{job.id}: {name}"), *results]

    def record(session: Session) -> list[str] | None:
        result_rows = [
            store_local_file(session, storage, job.organization_id, path, "fine-tune-results")
            for path in results
        ]
        fields = {"trained_tokens": result.trained_tokens, "evaluation": result.evaluation}
        if name is not None:
            session.add(_model_row(job, name, prefix, result))
            fields |= {"fine_tuned_model": name, "hyperparameters": result.hyperparameters}
        fields["result_files"] = [row.id for row in result_rows]
        if not transition(session, job.id, JobStatus.SUCCEEDED, **fields):
            session.rollback()  # cancelled (or taken back) while saving: discard the upload
            if name is not None:
                storage.delete_prefix(prefix)
            for row in result_rows:
                storage.delete_prefix(row.storage_key)
            return None
        if result.evaluation and _evaluation_message(result.evaluation):
            add_event(
                session, job.id, _evaluation_message(result.evaluation), data=result.evaluation
            )
        done = "The job has successfully completed"
        add_event(session, job.id, done, data=result.final_metrics or None)
        return on_succeeded(session, job.id)

    ready = db_retry(settings, "job success", record)
    if ready is None:
        return []
    db_retry(settings, "resume state cleanup", lambda s: drop_resume_state(s, storage, job.id))
    return ready


def _training_results(result: TrainingResult, title: str) -> list[Path]:
    """The result files every training run leaves: its step metrics and its loss curve."""
    out = result.artifact_dir.parent
    return [
        step_metrics_csv(result.history, out / "step_metrics.csv"),
        loss_curve_png(result.history, out / "loss_curve.png", title, result.evaluation),
    ]


def _model_row(job: Job, name: str, prefix: str, result: TrainingResult) -> Model:
    return Model(
        id=name,
        organization_id=job.organization_id,
        kind="fine_tuned",
        base_model=job.base_model,
        job_id=job.id,
        artifact_key=prefix,
        adapter_type=result.adapter_type,
        task=result.model_task,
    )


def _stopped(session: Session, storage: Storage, job_id: str) -> None:
    """A cancelled job's resume state goes (its checkpoints stay servable); a paused one's stays
    for the resumed run, which continues from the checkpoint this run saved as it stopped.
    The status tells them apart: a pause already resumed reads queued (or running)."""
    status = session.get(Job, job_id).status  # type: ignore[union-attr]
    if status == JobStatus.CANCELLED:
        drop_resume_state(session, storage, job_id)
        return
    checkpoint = latest_checkpoint(session, job_id)
    step = checkpoint.step if checkpoint is not None else 0
    add_event(session, job_id, f"Fine-tuning job paused at step {step}", data={"step": step})


def _evaluation_message(evaluation: dict) -> str:
    """One sentence per evaluated split: validation (top-level keys) and `data.test_split`'s."""
    test = evaluation.get("test") or {}
    parts = []
    for name, prefix, result, n in (
        ("Validation", "valid", evaluation, evaluation.get("valid_examples")),
        ("Test", "test", test, test.get("examples")),
    ):
        if "base" not in result:
            continue
        base, tuned = result["base"], result["tuned"]
        loss = f"{prefix}_loss"
        text = (
            f"{name} loss {base[loss]:.4f} before → {tuned[loss]:.4f} after "
            f"fine-tuning, on {n} examples"
        )
        for metric in sorted(set(base) & set(tuned) - {loss, f"{prefix}_perplexity"}):
            text += f"; {metric} {base[metric]:.3f} → {tuned[metric]:.3f}"
        parts.append(text)
    return ". ".join(parts)
