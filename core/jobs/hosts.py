"""One job across several hosts: what `resources.nodes` means and when it is accepted.

A job with `resources.nodes` above 1 runs on the Ray cluster the deployment points at
(LATHE_RAY_ADDRESS): the worker that claims it submits it through Ray's Job Submission API
(`core.runs.ray_submit`) and its ranks run as a Ray Train gang (`core.runs.ray_driver`). Its
message goes to a queue of its own, consumed only by workers configured with a Ray address, so
a worker that cannot reach Ray never takes it. This module is the API side of that: the checks
at creation (a 400 naming the field) and the queue name; it imports nothing of Ray.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidRequest
from core.jobspec.job import JobCreate
from core.settings import Settings


def nodes(spec: dict[str, Any]) -> int:
    """The hosts a stored job spec asks for (1: this worker's own devices)."""
    return int((spec.get("resources") or {}).get("nodes", 1))


def on_ray(spec: JobCreate) -> bool:
    """Whether the job runs across hosts, on the Ray cluster."""
    return spec.resources.nodes > 1


def gpus_per_node(spec: dict[str, Any]) -> int:
    return int((spec.get("resources") or {}).get("gpus_per_node") or 1)


def total_ranks(resources: Any) -> int | str:
    """The job's processes in all: nodes × gpus_per_node across hosts, else `gpus`."""
    if resources.nodes > 1:
        return resources.nodes * (resources.gpus_per_node or 1)
    return resources.gpus


def ray_queue(settings: Settings) -> str:
    """The queue of multi-host jobs: workers with LATHE_RAY_ADDRESS consume it."""
    return f"{settings.broker.queue_name}-ray"


def check_hosts(body: Any, settings: Settings, distributed_methods: frozenset[str]) -> None:
    """Refuse at creation a multi-host request that cannot run here, naming the field."""
    res = body.resources
    if res.nodes == 1:
        if res.gpus_per_node is not None:
            raise InvalidRequest(
                "resources.gpus_per_node applies to jobs across hosts (resources.nodes above "
                "1); on one host give the devices as resources.gpus",
                param="resources.gpus_per_node",
            )
        return
    if "gpus" in res.model_fields_set and res.gpus != 1:
        raise InvalidRequest(
            "with resources.nodes, give the devices of each host as resources.gpus_per_node "
            "(resources.gpus is for one host)",
            param="resources.gpus",
        )
    if body.method.type not in distributed_methods:
        raise InvalidRequest(
            f"method {body.method.type!r} trains on one device; resources.nodes must be 1 "
            f"(distributed methods: {', '.join(sorted(distributed_methods))})",
            param="resources.nodes",
            code="unsupported_on_worker",
        )
    if not settings.ray.address:
        raise InvalidRequest(
            "resources.nodes above 1 runs on a Ray cluster, and this deployment has none "
            "configured (LATHE_RAY_ADDRESS)",
            param="resources.nodes",
            code="unsupported_on_worker",
        )
