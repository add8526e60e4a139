"""The worker's side of a job across hosts: submit it to Ray, watch it, stop it.

The supervisor (core.runs.supervisor) starts, for a job with `resources.nodes` above 1:

    python -m core.runs.ray_submit JOB_ID WORKER ATTEMPT RESULT_FILE

in place of the training process. This process submits the run through Ray's Job Submission
API (LATHE_RAY_ADDRESS) — so operators see and manage Lathe's runs in Ray's dashboard, as
KubeRay's RayJob does — with the Lathe job id in the submission id and metadata, waits for it,
and stands for it towards the supervisor, which keeps renewing the job's lease as for a local
run:
- it exits as the Ray job ends: 0 with the run's outcome (written to RESULT_FILE, as the
  training process does), else 1 — the supervisor then retries the job from its latest
  checkpoint (a lost node, a crashed rank) or fails it once its attempts are spent;
- SIGTERM (a cancel, a timeout, a lost lease) and SIGUSR1 (the worker shuts down) stop the Ray
  job: Ray sends its driver SIGTERM, which asks rank 0 to checkpoint and stop at the next step
  (core.runs.ray_driver), and kills it after the cluster's RAY_JOB_STOP_WAIT_TIME_S;
- it dies with the worker (SIGTERM on the parent's death), stopping the Ray job on its way out.
  Where even that cannot run (the worker's host is gone), the driver ends the Ray job itself
  once the lease lapses, and the next run stops any leftover Ray job of the job before it
  submits its own.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.jobs import hosts
from core.jobs.events import add_event
from core.persistence.db import session_scope
from core.persistence.models import Job
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

OUTCOME_MARK = "LATHE_OUTCOME "
"""The driver prints the run's outcome (JSON) after this on a line of its own."""
METADATA_KEY = "lathe_job_id"


def start(settings: Settings, args: list[str]) -> subprocess.Popen:
    """The supervisor's child for a run across hosts (args: JOB_ID WORKER ATTEMPT RESULT)."""
    from core.process import die_with_parent

    return subprocess.Popen(
        [sys.executable, "-m", "core.runs.ray_submit", *args],
        preexec_fn=die_with_parent(signal.SIGTERM),  # it then stops the Ray job
    )


def client(settings: Settings) -> Any:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(settings.ray.address)


def lathe_jobs(ray: Any, job_id: str) -> list[Any]:
    """The Ray jobs submitted for a Lathe job, whatever their state."""
    return [j for j in ray.list_jobs() if (j.metadata or {}).get(METADATA_KEY) == job_id]


def stop_leftovers(ray: Any, job_id: str) -> list[str]:
    """Stop the Ray jobs of earlier runs of this job still going (their worker died where its
    SIGTERM could not reach us); returns their submission ids."""
    stopped = []
    for info in lathe_jobs(ray, job_id):
        if not info.status.is_terminal():
            log.warning("stopping Ray job %s of an earlier run of %s", info.submission_id, job_id)
            ray.stop_job(info.submission_id)
            stopped.append(info.submission_id)
    return stopped


HOST_OWN = frozenset({"LATHE_TEMP_DIR", "LATHE_MODEL_CACHE_DIR"})
"""Never forwarded: directories on the worker's host. Each Ray node keeps its own, where its
ranks fetch what they need (core.runs.ray_driver.follow)."""


def forwarded_env(settings: Settings) -> dict[str, str]:
    """The worker's environment the ranks need (LATHE_RAY_FORWARD_ENV patterns)."""
    keep = settings.ray.forward_env
    return {
        k: v
        for k, v in os.environ.items()
        if k not in HOST_OWN and any(fnmatch.fnmatch(k, p) for p in keep)
    }


def submit(settings: Settings, ray: Any, job_id: str, worker: str, attempt: int) -> str:
    """Submit run `attempt + 1` of the job; returns its submission id."""
    spec = _spec(settings, job_id)
    nodes, per_node = hosts.nodes(spec), hosts.gpus_per_node(spec)
    run = attempt + 1
    entrypoint = (
        f"{settings.ray.python} -m core.runs.ray_driver {job_id} {worker} {attempt} "
        f"{nodes} {per_node}"
    )
    submission = _submit(
        ray,
        entrypoint=entrypoint,
        submission_id=f"lathe-{job_id}-run{run}-{secrets.token_hex(3)}",
        metadata={METADATA_KEY: job_id, "lathe_run": str(run), "lathe_worker": worker},
        runtime_env={"env_vars": forwarded_env(settings)},
    )
    _event(
        settings,
        job_id,
        f"Submitted to Ray as job {submission}: {nodes} nodes × {per_node} ranks",
        {"ray_submission_id": submission, "nodes": nodes, "gpus_per_node": per_node},
    )
    return submission


SUBMIT_PATIENCE_S = 120.0


def _submit(ray: Any, **job: Any) -> str:
    """`submit_job`, again while Ray answers it has no job agent yet (a cluster or a node
    still starting: "No available agent to submit job, please try again later")."""
    deadline = time.monotonic() + SUBMIT_PATIENCE_S
    while True:
        try:
            return ray.submit_job(**job)
        except RuntimeError as exc:
            if "try again later" not in str(exc) or time.monotonic() > deadline:
                raise
            log.warning("Ray job API: %s", exc)
            time.sleep(1.0)


def _spec(settings: Settings, job_id: str) -> dict[str, Any]:
    with session_scope(settings.resolved_database_url) as session:
        job = session.get(Job, job_id)
        return dict(job.spec or {}) if job is not None else {}


def _event(settings: Settings, job_id: str, text: str, data: dict, level: str = "info") -> None:
    with session_scope(settings.resolved_database_url) as session:
        add_event(session, job_id, text, level=level, data=data)


def parse_outcome(logs: str) -> dict | None:
    """The outcome the driver printed last, if it printed one."""
    lines = [ln for ln in logs.splitlines() if ln.startswith(OUTCOME_MARK)]
    return json.loads(lines[-1][len(OUTCOME_MARK) :]) if lines else None


def wait(ray: Any, submission: str, stop_asked: list[bool]) -> Any:
    """Until the Ray job ends; a stop asked meanwhile is passed on once. Through a blip of
    the Ray API it keeps asking (the supervisor's deadlines still bound the run)."""
    stopped = False
    while True:
        if stop_asked and not stopped:
            log.warning("stopping Ray job %s", submission)
            stopped = _quietly(lambda: ray.stop_job(submission), False)  # else: next poll
        info = _quietly(lambda: ray.get_job_info(submission), None)
        if info is not None and info.status.is_terminal():
            return info
        time.sleep(0.5)


def _quietly(call: Any, default: Any) -> Any:
    try:
        return call()
    except Exception as exc:  # the Ray API is away a moment: try again at the next poll
        log.warning("Ray job API: %s", exc)
        return default


def main(argv: list[str]) -> int:
    job_id, worker, attempt, result_file = argv
    settings = get_settings()
    ray = client(settings)
    stop_asked: list[bool] = []
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_asked.append(True))
    stop_leftovers(ray, job_id)
    submission = submit(settings, ray, job_id, worker, int(attempt))
    info = wait(ray, submission, stop_asked)
    outcome = parse_outcome(_quietly(lambda: ray.get_job_logs(submission), "") or "")
    if outcome is not None and info.status in ("SUCCEEDED", "STOPPED"):  # STOPPED: handed back
        Path(result_file).write_text(json.dumps(outcome))
        return 0
    if not stop_asked:
        _event(
            settings,
            job_id,
            f"Ray job {submission} ended {info.status}: {info.message or 'no outcome'}",
            {"ray_submission_id": submission, "ray_status": str(info.status)},
            level="warn",
        )
    return 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:]))
