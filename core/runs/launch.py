"""The launcher of a run's ranks: one process, or one per device (sizes and queues are
core.jobs.placement's).

The supervisor starts a multi-device job's training as this module:

    python -m core.runs.launch N JOB_ID WORKER ATTEMPT RESULT_FILE

which starts N `core.runs.train_process` ranks with a torch.distributed rendezvous on a free
local port (RANK, WORLD_SIZE, MASTER_ADDR/PORT: what `accelerate` reads) and keeps them one
unit for the supervisor: SIGTERM goes to every rank, the hand-back signal to rank 0 (which
stops them all at the next step, core.training.distributed); when a rank dies the others are
ended (rank 0 after a grace, so a failure it saw too is still recorded) and the launcher exits
as the rank did — the supervisor then retries or fails the whole job, never half of it. The
ranks die with the launcher (PR_SET_PDEATHSIG), as it dies with the supervisor.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from core.jobs.hosts import on_ray
from core.jobs.placement import world_size
from core.jobspec.job import JobCreate
from core.runs import forkserver
from core.runs.forkserver import TrainingProcess
from core.settings import Settings

log = logging.getLogger(__name__)


def start(settings: Settings, spec: JobCreate | None, args: list[str]) -> TrainingProcess:
    """The supervisor's child for a run with `args` (JOB_ID WORKER ATTEMPT RESULT_FILE): the
    training process itself (forked warm, core.runs.forkserver), or this launcher over its
    ranks (fresh interpreters: each rank initialises its own device). A spec that no longer
    parses (None) gets one process, whose run fails the job saying why."""
    if spec is not None and on_ray(spec):  # across hosts: submitted to Ray, watched from here
        from core.runs import ray_submit

        return ray_submit.start(settings, args)
    n = world_size(settings, spec) if spec is not None else 1
    if n == 1:
        return forkserver.start(args, warm=settings.jobs.warm_training)
    from core.process import die_with_parent

    return subprocess.Popen(
        [sys.executable, "-m", "core.runs.launch", str(n), *args],
        preexec_fn=die_with_parent(signal.SIGKILL),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_ranks(n: int, args: list[str]) -> list[subprocess.Popen]:
    from core.process import die_with_parent

    port = str(_free_port())
    threads = str(max(1, (os.cpu_count() or 1) // n))
    ranks = []
    for rank in range(n):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(n),
            "LOCAL_WORLD_SIZE": str(n),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        env.setdefault("OMP_NUM_THREADS", threads)  # the ranks share the host's cores
        ranks.append(
            subprocess.Popen(
                [sys.executable, "-m", "core.runs.train_process", *args],
                env=env,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        )
    return ranks


def _end(ranks: list[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM the ranks still running, SIGKILL those still there after `grace_s`."""
    for proc in ranks:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace_s
    while any(p.poll() is None for p in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in ranks:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait(ranks: list[subprocess.Popen], grace_s: float) -> int:
    """Until every rank exited 0 (→ 0) or one failed (→ its code, the others ended)."""
    while True:
        codes = [p.poll() for p in ranks]
        if all(c == 0 for c in codes):
            return 0
        failed = next((i for i, c in enumerate(codes) if c not in (None, 0)), None)
        if failed is not None:
            log.error("rank %d of %d exited with %s: ending the job's other ranks",
                      failed, len(ranks), codes[failed])  # fmt: skip
            if failed != 0 and ranks[0].poll() is None:  # rank 0 may be recording the failure
                deadline = time.monotonic() + grace_s
                while ranks[0].poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
            _end(ranks, grace_s)
            code = codes[failed]
            return 128 - code if code < 0 else code  # a signal shows as the shell's 128 + n
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    from core.settings import get_settings

    n, args = int(argv[0]), argv[1:]
    grace_s = get_settings().jobs.cancel_grace_s
    ranks = _start_ranks(n, args)

    def forward(signum: int, _frame: Any) -> None:
        targets = ranks[:1] if signum == signal.SIGUSR1 else ranks  # hand back: rank 0 decides
        for proc in targets:
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, forward)
    return _wait(ranks, grace_s)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:]))
