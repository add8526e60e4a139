"""The worker side of a job: run its training in a child process and watch over it.

Training runs in `core.runs.train_process`, never in the worker itself, so that whatever the
training does the worker stays in charge:
- it renews the job's lease every LATHE_LEASE_HEARTBEAT_S (core.runs.lease) while the child
  trains, independently of the training loop, so a long step never looks like a dead worker;
- a cancel, a lost lease, or LATHE_JOB_TIMEOUT_S ends the child for real: SIGTERM after
  LATHE_CANCEL_GRACE_S, SIGKILL as long again after — a hung step cannot keep the worker;
- when the worker shuts down (SIGTERM to the worker), the child is asked (SIGUSR1) to checkpoint
  at its next step boundary; the job is then handed back to the queue, not paused;
- a child that crashes (segfault, OOM kill, an exception past the runner) leaves the job
  running: it is retried from its latest checkpoint while attempts remain, else failed. The
  worker survives it either way.
The child dies with the worker however the worker dies (core.runs.forkserver, which forks it
from a process that imported the training stack once), so a kill -9 of the worker never leaves
a training process behind writing to a job someone else resumes.
"""

from __future__ import annotations

import json
import logging
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from core.jobs.dependencies import on_failed
from core.jobs.events import add_event
from core.jobs.placement import stored_spec
from core.jobs.states import JobStatus, transition
from core.persistence.models import Job
from core.retry import db_retry, in_session, is_transient
from core.runs import launch
from core.runs.forkserver import TrainingProcess
from core.runs.lease import hand_back, renew
from core.runs.runner import admit
from core.runs.train_process import HAND_BACK
from core.settings import Settings
from core.tempdirs import temp_root

log = logging.getLogger(__name__)


@dataclass
class Watch:
    """What the supervisor saw while the child ran."""

    claimed_at: float | None = None
    """When the run's first heartbeat found the job claimed: LATHE_JOB_TIMEOUT_S counts from
    there (process start-up and data loading are not the job's)."""
    asked_back: bool = False
    reason: str | None = None
    """Why the supervisor stopped the child: a job status that took it off this run
    (cancelled, paused, succeeded, failed, queued = taken back), or `timeout`."""
    deadline: float | None = None
    terminated_at: float | None = None


def supervise(
    settings: Settings, job_id: str, worker: str, stopping: Callable[[], bool]
) -> list[str]:
    """Run the job in a supervised child; returns the jobs to enqueue (its dependants once it
    succeeded, or itself when handed back or retried)."""
    job = db_retry(
        settings, "job admission", lambda s: admit(s, job_id, settings.jobs.max_attempts)
    )
    if job is None:
        return []
    attempt = job.attempts
    with tempfile.TemporaryDirectory(prefix=f"lathe-run-{job_id}-", dir=temp_root(settings)) as tmp:
        result = Path(tmp) / "outcome.json"
        argv = [job_id, worker, str(attempt), str(result)]
        spec = stored_spec(job.spec)
        proc = launch.start(settings, spec, argv)  # one training process, or a launcher
        watch = _watch(settings, proc, job_id, attempt + 1, stopping)
        outcome = json.loads(result.read_text()) if result.exists() else None
    return _settle(settings, job_id, attempt + 1, proc.returncode, outcome, watch)


def _watch(
    settings: Settings,
    proc: TrainingProcess,
    job_id: str,
    run: int,
    stopping: Callable[[], bool],
) -> Watch:
    watch = Watch()
    next_beat = 0.0
    while proc.poll() is None:
        now = time.monotonic()
        if stopping() and not watch.asked_back:
            log.warning("worker stopping: asking job %s to checkpoint and hand back", job_id)
            watch.asked_back = True
            proc.send_signal(HAND_BACK)
            _stop_by(watch, now + settings.jobs.stop_grace_s)
        if now >= next_beat:
            next_beat = now + settings.jobs.lease_heartbeat_s
            _beat(settings, watch, job_id, run, now)
        running_s = now - watch.claimed_at if watch.claimed_at is not None else 0.0
        if watch.reason is None and running_s > settings.jobs.timeout_s:
            watch.reason = "timeout"
            _stop_by(watch, now)
        if watch.deadline is not None and now >= watch.deadline and watch.terminated_at is None:
            log.warning("ending the training process of %s (%s)", job_id, watch.reason)
            proc.terminate()
            watch.terminated_at = now
        if (
            watch.terminated_at is not None
            and now >= watch.terminated_at + settings.jobs.cancel_grace_s
        ):
            proc.kill()
        time.sleep(0.1)
    return watch


def _stop_by(watch: Watch, deadline: float) -> None:
    watch.deadline = deadline if watch.deadline is None else min(watch.deadline, deadline)


def _beat(settings: Settings, watch: Watch, job_id: str, run: int, now: float) -> None:
    """Renew the lease; once the run lost it, decide how long the child may take to stop."""
    url = settings.resolved_database_url
    try:  # one try: the loop must stay responsive through an outage; the next beat retries
        renewed = in_session(
            url,
            lambda s: renew(s, job_id, run, settings.jobs.lease_timeout_s),
            what="lease",
            budget_s=0,
        )
    except Exception as exc:  # the database is away: the lease has slack, try again later
        if not is_transient(exc):
            raise
        log.warning("could not renew the lease of %s: %s", job_id, exc)
        return
    if renewed:
        watch.claimed_at = watch.claimed_at or now
        return
    if watch.claimed_at is None or watch.reason is not None:
        return  # not claimed yet (the child is loading data), or already being stopped
    status = db_retry(settings, "job lookup", lambda s: s.get(Job, job_id).status)  # type: ignore[union-attr]
    taken = status == JobStatus.RUNNING.value or status == JobStatus.QUEUED.value
    watch.reason = "queued" if taken else status
    if taken:  # another run owns the job now: this one must stop at once
        grace = 0.0
    elif status == JobStatus.CANCELLED.value:
        grace = settings.jobs.cancel_grace_s
    else:  # paused (checkpointing), or finishing its own success/failure
        grace = settings.jobs.stop_grace_s
    _stop_by(watch, now + grace)


def _settle(
    settings: Settings,
    job_id: str,
    run: int,
    returncode: int | None,
    outcome: dict | None,
    watch: Watch,
) -> list[str]:
    """What the job becomes once its child is gone."""
    if outcome is not None and not outcome["handed_back"]:
        return list(outcome["enqueue"])
    if outcome is not None or (watch.asked_back and watch.reason is None):
        return _hand_back(settings, job_id, run, refund=True, reason="The worker is shutting down")
    if watch.reason == "timeout":
        _fail_run(
            settings,
            job_id,
            run,
            "job_timeout",
            f"The run exceeded LATHE_JOB_TIMEOUT_S ({settings.jobs.timeout_s:.0f} s)",
        )
        return []
    if watch.reason is not None:
        return []  # cancelled, paused, finished or taken back: its status says so already
    how = _exit_description(returncode)
    if run < settings.jobs.max_attempts:
        log.error("training process of %s %s; retrying", job_id, how)
        return _hand_back(settings, job_id, run, refund=False, reason=f"The training process {how}")
    _fail_run(
        settings,
        job_id,
        run,
        "training_crashed",
        f"The training process {how}, on all {settings.jobs.max_attempts} attempts "
        "(LATHE_MAX_ATTEMPTS)",
    )
    return []


def _exit_description(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _hand_back(
    settings: Settings, job_id: str, run: int, *, refund: bool, reason: str
) -> list[str]:
    """Back to the queue (the caller enqueues it): from running as this run, or as it was if
    the run never claimed it."""

    def back(session: Session) -> bool:
        job = session.get(Job, job_id)
        if job is None:
            return False
        if job.status in (JobStatus.VALIDATING_FILES.value, JobStatus.QUEUED.value):
            return True  # never claimed: its message was used up, so send another
        note = f"{reason}: the job goes back to the queue and resumes from its latest checkpoint"
        if not refund:
            note += f" (attempt {run + 1} of {settings.jobs.max_attempts})"
        return hand_back(session, job_id, run, note, refund=refund)

    return [job_id] if db_retry(settings, "job hand-back", back) else []


def _fail_run(settings: Settings, job_id: str, run: int, code: str, message: str) -> None:
    error = {"code": code, "message": message, "param": None}

    def fail(session: Session) -> None:
        if transition(
            session,
            job_id,
            JobStatus.FAILED,
            source=JobStatus.RUNNING,
            when=[Job.attempts == run],
            error=error,
        ):
            add_event(session, job_id, f"Fine-tuning job failed: {message}", level="error")
            on_failed(session, job_id)

    db_retry(settings, "job failure", fail)
