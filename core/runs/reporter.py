"""The worker's line back to the job row: events in, cancellation and pausing out.

Each write is its own short transaction, retried through a database outage
(`LATHE_RETRY_BUDGET_S`), so the API sees progress as it happens and a Postgres restart stalls
training at a step boundary instead of failing it. Metrics events are unique per (job, step):
a run resumed from a checkpoint re-trains the steps after it, and their events — already
recorded by the run that died — are not written again.

Nothing is written once the job is finished (cancelled, or failed by the API): each event is
added in a transaction that first locks the job's row and reads its status, so a cancel
commits either before (the event is dropped, and training stops at once) or after it — the
"cancelled" event is always the last word, and no `Step N/M` follows it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.jobs.checkpoints import record_checkpoint, upload_checkpoint
from core.jobs.events import add_event, metrics_message
from core.jobs.states import JobStatus
from core.persistence.models import Job, JobEvent
from core.retry import in_session, is_transient
from core.storage import Storage
from core.webhooks.outbox import checkpoint_created

T = TypeVar("T")
log = logging.getLogger(__name__)


class JobReporter:
    def __init__(
        self,
        database_url: str,
        job_id: str,
        poll_interval_s: float = 1.0,
        storage: Storage | None = None,
        keep_checkpoints: int = 3,
        *,
        retry_budget_s: float = 0.0,
        hand_back: Callable[[], bool] | None = None,
        hang_at_step: int | None = None,
        crash_at_step: int | None = None,
    ):
        """`hand_back()` turns true when the worker wants the job back (it is shutting down):
        training stops at the next step as for a pause, checkpointing first. `hang_at_step`
        and `crash_at_step` are fault injection for tests only (LATHE_FAULT_INJECTION)."""
        self.url = database_url
        self.job_id = job_id
        self.storage = storage
        self.keep_checkpoints = keep_checkpoints
        self.poll_interval_s = poll_interval_s
        self.retry_budget_s = retry_budget_s
        self.hand_back = hand_back or (lambda: False)
        self.hang_at_step = hang_at_step
        self.crash_at_step = crash_at_step
        self._last_poll = 0.0
        self._stop = False
        self._handing_back = False
        self._status = JobStatus.RUNNING.value
        self._recorded_step: int | None = None

    def _db(self, what: str, fn: Callable[[Session], T]) -> T:
        return in_session(self.url, fn, what=what, budget_s=self.retry_budget_s)

    def message(self, text: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        def add(session: Session) -> None:
            if self._live(session):
                add_event(session, self.job_id, text, level=level, data=data)

        self._db("job event", add)

    def _live(self, session: Session) -> bool:
        """Whether the job still takes this run's events; locks its row (on Postgres) until
        the transaction ends, so a cancel cannot slip in between this check and the write.
        A finished job stops training at the next step."""
        query = select(Job.status).where(Job.id == self.job_id).with_for_update()
        status = session.scalar(query)
        if status is not None and not JobStatus(status).terminal:
            return True
        self._stop, self._status = True, status or JobStatus.CANCELLED.value
        return False

    @property
    def finished(self) -> bool:
        """The job was cancelled (or otherwise finished) under this run."""
        return self._stop and JobStatus(self._status).terminal

    def metrics(self, data: dict[str, Any]) -> None:
        step = int(data["step"])
        if step == self.hang_at_step:
            _hang()
        if step == self.crash_at_step:  # as the OOM killer or a segfault would
            os.kill(os.getpid(), signal.SIGKILL)
        if self._recorded_step is None:  # once per run: what an earlier run of the job recorded
            self._recorded_step = self._db("metrics lookup", self._last_recorded_step)
        if step <= self._recorded_step:
            return  # a resumed run re-training a step the run before it already reported
        if self.finished:
            return  # the step the trainer stopped on after a cancel: nothing after "cancelled"

        def add(session: Session) -> None:
            if not self._live(session):
                return
            message = metrics_message(data)
            add_event(session, self.job_id, message, type="metrics", data=data, step=step)

        try:
            self._db("metrics event", add)
        except IntegrityError:  # recorded meanwhile (a retried commit that had landed)
            log.info("metrics for step %d of %s already recorded", step, self.job_id)
        self._recorded_step = step

    def _last_recorded_step(self, session: Session) -> int:
        query = select(func.max(JobEvent.step)).where(JobEvent.job_id == self.job_id)
        return session.scalar(query) or 0

    def resolved(self, hyperparameters: dict[str, Any]) -> None:
        self._db(
            "hyperparameters",
            lambda s: s.execute(
                update(Job).where(Job.id == self.job_id).values(hyperparameters=hyperparameters)
            ),
        )

    def checkpoint(
        self, step: int, artifact_dir: Path, state_dir: Path | None, metrics: dict[str, Any]
    ) -> None:
        """Upload, then record (a row never names missing bytes), then delete what was pruned.
        Bytes a failure leaves unrecorded are removed by the sweeper (core.cleanup)."""
        if self.storage is None:
            raise RuntimeError("this reporter was made without storage: no checkpoints")

        def load(session: Session) -> Job:
            job = session.get(Job, self.job_id)
            assert job is not None
            session.expunge(job)
            return job

        job = self._db("job lookup", load)
        prefix = upload_checkpoint(self.storage, job, step, artifact_dir, state_dir)

        def record(session: Session) -> list[str]:
            if not self._live(session):  # cancelled meanwhile: the cancel is the last word
                return [prefix]
            name, doomed = record_checkpoint(
                session, job, step, prefix, metrics, self.keep_checkpoints
            )
            checkpoint_created(session, job, name, step)  # webhook, same transaction
            add_event(
                session,
                self.job_id,
                f"Checkpoint saved at step {step}: {name}",
                data={"fine_tuned_model_checkpoint": name, **metrics},
            )
            for pruned in doomed.checkpoints:  # the events that named them now say so
                add_event(
                    session,
                    self.job_id,
                    f"Checkpoint {pruned} removed: only the latest {self.keep_checkpoints} "
                    "are kept (LATHE_MAX_CHECKPOINTS)",
                    data={"pruned_checkpoint": pruned},
                )
            return doomed.prefixes

        for key in self._db("checkpoint record", record):
            self.storage.delete_prefix(key)

    def should_stop(self) -> bool:
        if not self._stop and self.hand_back():
            self._stop = self._handing_back = True
        now = time.monotonic()
        if not self._stop and now - self._last_poll >= self.poll_interval_s:
            self._last_poll = now
            try:  # one try: training goes on through an outage (its writes wait for it)
                with_status = in_session(self.url, self._poll, what="status poll", budget_s=0)
            except Exception as exc:  # the database is away: keep training, ask again later
                if not is_transient(exc):
                    raise
                return self._stop
            self._status = with_status
            self._stop = with_status != JobStatus.RUNNING.value
        return self._stop

    def _poll(self, session: Session) -> str:
        return session.get(Job, self.job_id).status  # type: ignore[union-attr]

    def pausing(self) -> bool:
        """The stop is a pause, not a cancel: anything but cancelled (a pause already resumed
        reads `queued`; its next run must find this run's progress too), or a hand-back."""
        return self._stop and (self._handing_back or self._status != JobStatus.CANCELLED.value)

    @property
    def handing_back(self) -> bool:
        """The run stopped because its worker asked for the job back (not a pause/cancel)."""
        return self._handing_back


def _hang() -> None:
    """Fault injection (tests only): a step that never returns and ignores SIGTERM, as a stuck
    kernel would; only the supervisor's SIGKILL ends it."""
    log.warning("fault injection: hanging this step")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
