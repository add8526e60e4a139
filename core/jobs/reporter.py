"""The worker's line back to the job row: events in, cancellation and pausing out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from core.jobs.checkpoints import record_checkpoint, upload_checkpoint
from core.jobs.events import add_event, metrics_message
from core.jobs.states import JobStatus
from core.persistence.db import session_scope
from core.persistence.models import Job
from core.storage import Storage


class JobReporter:
    """Each event is its own short transaction, so the API sees progress as it happens."""

    def __init__(
        self,
        database_url: str,
        job_id: str,
        poll_interval_s: float = 1.0,
        storage: Storage | None = None,
        keep_checkpoints: int = 3,
    ):
        self.url = database_url
        self.job_id = job_id
        self.storage = storage
        self.keep_checkpoints = keep_checkpoints
        self.poll_interval_s = poll_interval_s
        self._last_poll = 0.0
        self._stop = False
        self._status = JobStatus.RUNNING.value

    def message(self, text: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        with session_scope(self.url) as session:
            add_event(session, self.job_id, text, level=level, data=data)

    def metrics(self, data: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            add_event(session, self.job_id, metrics_message(data), type="metrics", data=data)

    def resolved(self, hyperparameters: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            session.execute(
                update(Job).where(Job.id == self.job_id).values(hyperparameters=hyperparameters)
            )

    def checkpoint(
        self, step: int, artifact_dir: Path, state_dir: Path | None, metrics: dict[str, Any]
    ) -> None:
        """Upload, then record (a row never names missing bytes), then delete what was pruned."""
        if self.storage is None:
            raise RuntimeError("this reporter was made without storage: no checkpoints")
        with session_scope(self.url) as session:
            job = session.get(Job, self.job_id)
            assert job is not None
            session.expunge(job)
        prefix = upload_checkpoint(self.storage, job, step, artifact_dir, state_dir)
        with session_scope(self.url) as session:
            name, doomed = record_checkpoint(
                session, job, step, prefix, metrics, self.keep_checkpoints
            )
            add_event(
                session,
                self.job_id,
                f"Checkpoint saved at step {step}: {name}",
                data={"fine_tuned_model_checkpoint": name, **metrics},
            )
        for key in doomed:
            self.storage.delete_prefix(key)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last_poll >= self.poll_interval_s:
            self._last_poll = now
            with session_scope(self.url) as session:
                status = session.get(Job, self.job_id).status  # type: ignore[union-attr]
            self._status = status
            self._stop = status != JobStatus.RUNNING.value
        return self._stop

    def pausing(self) -> bool:
        """The stop is a pause, not a cancel: anything but cancelled (a pause already resumed
        reads `queued`; its next run must find this run's progress too)."""
        return self._stop and self._status != JobStatus.CANCELLED.value
