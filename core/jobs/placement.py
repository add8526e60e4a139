"""Where a job can run: its size in devices, the Celery queue of workers that size, and what
the job spec may ask of them (checked at creation, named in a 400).

A job asks for `resources.gpus` devices. Workers say how many they have (`lathe worker --gpus
N`, LATHE_WORKER_GPUS; detected by default) and consume the Celery queue for that size, so a
2-GPU job is only ever taken by a 2-GPU worker; one-device jobs keep the default queue (which
every worker also consumes, as do `"auto"` jobs: they use what the worker that takes them has).
The API and the worker both read this; starting the ranks is core.runs.launch's.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any

from pydantic import ValidationError

from core.errors import InvalidRequest
from core.jobs import hosts
from core.jobspec.job import JobCreate
from core.settings import Settings

DISTRIBUTED_METHODS = frozenset({"supervised", "classification", "dpo", "reward_model"})
"""Methods whose trainer runs across ranks (transformers' Trainer / TRL's DPO and reward
trainers on accelerate); the others (online RL, distillation) train on one device."""
FSDP_METHODS = frozenset({"supervised", "classification"})


def worker_gpus(settings: Settings) -> int:
    """The devices this worker has for one job: LATHE_WORKER_GPUS, or the CUDA devices it may
    use (CUDA_VISIBLE_DEVICES, else the host's /dev/nvidiaN), at least 1. Counted without
    importing torch, so the worker starts as fast as before."""
    if settings.training.worker_gpus != "auto":
        return settings.training.worker_gpus
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return max(1, len(glob.glob("/dev/nvidia[0-9]*")))


def queue_for(settings: Settings, gpus: int | str) -> str:
    """The Celery queue of workers with `gpus` devices (the default queue for one, or 'auto')."""
    return (
        settings.broker.queue_name
        if gpus in (1, "auto")
        else f"{settings.broker.queue_name}-gpus-{gpus}"
    )


def worker_queues(settings: Settings, gpus: int) -> list[str]:
    """What a worker with `gpus` devices consumes: its size's queue and the default one, and
    the multi-host jobs' queue where it can submit to Ray (core.jobs.hosts)."""
    ray = [hosts.ray_queue(settings)] if settings.ray.address else []
    return list(dict.fromkeys([queue_for(settings, gpus), settings.broker.queue_name, *ray]))


def stored_spec(stored: dict[str, Any] | None) -> JobCreate | None:
    """A job's stored spec as the model the API validated it as; None when it no longer
    parses (stored by another release): such a job goes to the default queue and runs as one
    process, whose run fails it saying why (core.runs.runner), instead of never leaving."""
    try:
        return JobCreate.model_validate(stored or {})
    except ValidationError:
        return None


def job_queue(settings: Settings, job_id: str) -> str:
    """The queue a job's message goes to, from its stored spec (the default queue for a job
    that no longer exists: its message finds nothing to run)."""
    from core.persistence.db import session_scope
    from core.persistence.models import Job

    with session_scope(settings.resolved_database_url) as session:
        job = session.get(Job, job_id)
        spec = stored_spec(job.spec) if job is not None else None
    if spec is None:
        return settings.broker.queue_name
    if hosts.on_ray(spec):
        return hosts.ray_queue(settings)
    return queue_for(settings, spec.resources.gpus)


def world_size(settings: Settings, spec: JobCreate) -> int:
    """How many ranks this worker runs the job on: what it asked for; 'auto' is all the
    worker's devices for a method that trains distributed, one otherwise."""
    gpus = spec.resources.gpus
    if gpus == "auto":
        return worker_gpus(settings) if spec.method.type in DISTRIBUTED_METHODS else 1
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
    if gpus in (1, "auto") or gpus in settings.training.worker_gpu_sizes:
        return None
    sizes = ", ".join(str(n) for n in sorted(settings.training.worker_gpu_sizes))
    return (
        f"No worker class of this deployment has {gpus} GPUs (LATHE_WORKER_GPU_SIZES: {sizes}): "
        f"the job waits in queue {queue_for(settings, gpus)} until a worker started with "
        f"--gpus {gpus} takes it"
    )
