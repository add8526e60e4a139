"""One job across several devices: its size, its queue, and the launcher of its ranks.

A job asks for `resources.gpus` devices. Workers say how many they have (`lathe worker --gpus
N`, LATHE_WORKER_GPUS; detected by default) and consume the Celery queue for that size, so a
2-GPU job is only ever taken by a 2-GPU worker; one-device jobs keep the default queue (which
every worker also consumes, as do `"auto"` jobs: they use what the worker that takes them has).

The supervisor starts a multi-device job's training as this module:

    python -m core.jobs.launch N JOB_ID WORKER ATTEMPT RESULT_FILE

which starts N `core.jobs.train_process` ranks with a torch.distributed rendezvous on a free
local port (RANK, WORLD_SIZE, MASTER_ADDR/PORT: what `accelerate` reads) and keeps them one
unit for the supervisor: SIGTERM goes to every rank, the hand-back signal to rank 0 (which
stops them all at the next step, core.training.distributed); when a rank dies the others are
ended (rank 0 after a grace, so a failure it saw too is still recorded) and the launcher exits
as the rank did — the supervisor then retries or fails the whole job, never half of it. The
ranks die with the launcher (PR_SET_PDEATHSIG), as it dies with the supervisor.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from core.errors import InvalidRequest
from core.jobs import hosts, warm_start
from core.jobs.warm_start import TrainingProcess
from core.settings import Settings

log = logging.getLogger(__name__)

DISTRIBUTED_METHODS = frozenset({"supervised", "classification", "dpo", "reward_model"})
"""Methods whose trainer runs across ranks (transformers' Trainer / TRL's DPO and reward
trainers on accelerate); the others (online RL, distillation) train on one device."""
FSDP_METHODS = frozenset({"supervised", "classification"})


def worker_gpus(settings: Settings) -> int:
    """The devices this worker has for one job: LATHE_WORKER_GPUS, or the CUDA devices it may
    use (CUDA_VISIBLE_DEVICES, else the host's /dev/nvidiaN), at least 1. Counted without
    importing torch, so the worker starts as fast as before."""
    if settings.worker_gpus != "auto":
        return settings.worker_gpus
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return max(1, len(glob.glob("/dev/nvidia[0-9]*")))


def requested_gpus(spec: dict[str, Any]) -> int | str:
    return (spec.get("resources") or {}).get("gpus", 1)


def queue_for(settings: Settings, gpus: int | str) -> str:
    """The Celery queue of workers with `gpus` devices (the default queue for one, or 'auto')."""
    return settings.queue_name if gpus in (1, "auto") else f"{settings.queue_name}-gpus-{gpus}"


def worker_queues(settings: Settings, gpus: int) -> list[str]:
    """What a worker with `gpus` devices consumes: its size's queue and the default one, and
    the multi-host jobs' queue where it can submit to Ray (core.jobs.hosts)."""
    ray = [hosts.ray_queue(settings)] if settings.ray_address else []
    return list(dict.fromkeys([queue_for(settings, gpus), settings.queue_name, *ray]))


def job_queue(settings: Settings, job_id: str) -> str:
    """The queue a job's message goes to, from its stored spec."""
    from core.persistence.db import session_scope
    from core.persistence.models import Job

    with session_scope(settings.resolved_database_url) as session:
        job = session.get(Job, job_id)
        spec = (job.spec if job is not None else {}) or {}
    if hosts.on_ray(spec):
        return hosts.ray_queue(settings)
    return queue_for(settings, requested_gpus(spec))


def world_size(settings: Settings, spec: dict[str, Any]) -> int:
    """How many ranks this worker runs the job on: what it asked for; 'auto' is all the
    worker's devices for a method that trains distributed, one otherwise."""
    gpus = requested_gpus(spec)
    if gpus == "auto":
        method = (spec.get("method") or {}).get("type", "supervised")
        return worker_gpus(settings) if method in DISTRIBUTED_METHODS else 1
    return int(gpus)


def check_spec(body: Any) -> None:
    """Refuse at creation what cannot run across devices, naming the field (400)."""
    from core.settings import get_settings

    hosts.check_hosts(body, get_settings(), DISTRIBUTED_METHODS)
    gpus, strategy = hosts.total_ranks(body.resources), body.distributed.strategy
    method, adapter = body.method.type, body.adapter.type
    if gpus not in (1, "auto") and method not in DISTRIBUTED_METHODS:
        raise InvalidRequest(
            f"method {method!r} trains on one device; resources.gpus must be 1 "
            f"(distributed methods: {', '.join(sorted(DISTRIBUTED_METHODS))})",
            param="resources.gpus",
            code="unsupported_on_worker",
        )
    if strategy == "auto":
        return
    if gpus == 1:
        raise InvalidRequest(
            f"distributed.strategy {strategy!r} needs resources.gpus above 1",
            param="distributed.strategy",
        )
    if strategy == "zero3" and importlib.util.find_spec("deepspeed") is None:
        raise InvalidRequest(
            "distributed.strategy 'zero3' needs DeepSpeed, which is not installed here; "
            "use 'fsdp' (parameters, gradients and optimizer state sharded) or 'ddp'",
            param="distributed.strategy",
            code="unsupported_on_worker",
        )
    if strategy == "zero3":
        raise InvalidRequest(
            "distributed.strategy 'zero3' is not supported yet; use 'fsdp'",
            param="distributed.strategy",
            code="unsupported_on_worker",
        )
    if strategy == "fsdp" and (adapter != "full" or method not in FSDP_METHODS):
        raise InvalidRequest(
            "distributed.strategy 'fsdp' shards full fine-tuning (adapter.type 'full') of "
            f"{' and '.join(sorted(FSDP_METHODS))} jobs; adapters train with 'ddp'",
            param="distributed.strategy",
        )


def placement_note(settings: Settings, body: Any) -> str | None:
    """An event for a job no configured worker class can take (LATHE_WORKER_GPU_SIZES): it
    waits in its queue until a worker of that size starts, and says so."""
    gpus = body.resources.gpus
    if gpus in (1, "auto") or gpus in settings.worker_gpu_sizes:
        return None
    sizes = ", ".join(str(n) for n in sorted(settings.worker_gpu_sizes))
    return (
        f"No worker class of this deployment has {gpus} GPUs (LATHE_WORKER_GPU_SIZES: {sizes}): "
        f"the job waits in queue {queue_for(settings, gpus)} until a worker started with "
        f"--gpus {gpus} takes it"
    )


def start(settings: Settings, job_spec: dict[str, Any], args: list[str]) -> TrainingProcess:
    """The supervisor's child for a run with `args` (JOB_ID WORKER ATTEMPT RESULT_FILE): the
    training process itself (forked warm, core.jobs.warm_start), or this launcher over its
    ranks (fresh interpreters: each rank initialises its own device)."""
    if hosts.on_ray(job_spec):  # across hosts: submitted to Ray, watched from here
        from core.jobs import ray_submit

        return ray_submit.start(settings, args)
    n = world_size(settings, job_spec)
    if n == 1:
        return warm_start.start(args, warm=settings.warm_training)
    from core.process import die_with_parent

    return subprocess.Popen(
        [sys.executable, "-m", "core.jobs.launch", str(n), *args],
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
                [sys.executable, "-m", "core.jobs.train_process", *args],
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
    grace_s = get_settings().cancel_grace_s
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
