"""The training process: one run of one job, started and watched by the worker's supervisor.

    python -m core.runs.train_process JOB_ID WORKER ATTEMPT RESULT_FILE

Runs `runner.run_attempt` and writes its outcome (jobs to enqueue, whether it handed the job
back) to RESULT_FILE as JSON. SIGUSR1 asks it to stop at the next step boundary with a
checkpoint, as a pause does, because its worker is shutting down. Any other way it ends — a
crash, SIGTERM/SIGKILL from the supervisor on cancel, timeout or a lost lease — leaves no
result file, and the supervisor decides what the job becomes. With RANK/WORLD_SIZE set it is
one rank of a job across devices, started by `core.runs.launch`: rank 0 runs the job, the
others train what it shares and write nothing.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path

import core.sweeps  # noqa: F401  (registers the hook that advances sweeps: core.jobs.lifecycle)
from core.logging_setup import configure_logging, job_fields, set_fields
from core.runs.runner import run_attempt
from core.settings import get_settings
from core.training import distributed

HAND_BACK = signal.SIGUSR1


def main(argv: list[str]) -> int:
    job_id, worker, attempt, result_file = argv
    settings = get_settings()
    configure_logging(settings)  # the worker's format, with this job's ids on every line
    set_fields(job_fields(settings.resolved_database_url, job_id))
    asked = []
    signal.signal(HAND_BACK, lambda *_: asked.append(True))
    if distributed.world_size() > 1:  # one rank of a job across devices (core.runs.launch)
        distributed.init()
        if not distributed.is_main():
            follow()
            return 0
    try:
        outcome = run_attempt(
            settings, job_id, worker, attempt=int(attempt), hand_back=lambda: bool(asked)
        )
    finally:
        distributed.release()
    Path(result_file).write_text(json.dumps(asdict(outcome)))
    return 0


def follow() -> None:
    """A rank > 0: train what rank 0 shares, reporting nothing (core.training.distributed)."""
    from core.methods import get_method

    ctx = distributed.follow()
    if ctx is not None:
        get_method(ctx.spec.method.type)(ctx)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
