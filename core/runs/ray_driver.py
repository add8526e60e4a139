"""The Ray job of a run across hosts: its ranks as a Ray Train `TorchTrainer` gang.

    python -m core.runs.ray_driver JOB_ID WORKER ATTEMPT NODES GPUS_PER_NODE

is the entrypoint `core.runs.ray_submit` gives Ray's Job Submission API. It asks Ray Train for
NODES × GPUS_PER_NODE workers, one placement-group bundle each (a GPU, or a CPU on a CPU
cluster, where the ranks talk gloo), spread over the nodes (STRICT_SPREAD with one rank per
node). Ray Train sets up the torch process group and the usual environment (RANK, WORLD_SIZE,
MASTER_ADDR/PORT), so each rank then runs exactly what a rank of `core.runs.launch` runs:
rank 0 the job (`runner.run_attempt`: events, metrics and checkpoints to Postgres and S3),
the others what it shares (`core.training.distributed`, DDP or FSDP2). A rank on another node
than rank 0's fetches the files rank 0 read locally (start weights, resume state) itself, and
uploads the files of each checkpoint that it wrote on its node (its RNG state, its FSDP
shards) into the checkpoint in storage before rank 0 records it (`upload_state`).

Ray Train restarts nothing by itself (max_failures=0): a lost node or a dead rank fails the Ray
job, and Lathe's supervisor retries the whole run from the job's latest checkpoint, counting
attempts as for any crash — one retry policy, whatever ran the ranks.

The driver also holds the run to its lease: a watchdog reads the job's row and ends the Ray job
(the driver exits; Ray ends the actors it owns, the gang included) once the run no longer owns
it — its worker stopped renewing the lease (it died with its host), or another run took the
job. SIGTERM (Ray's stop) asks rank 0 to checkpoint and stop at its next step, as a worker's
shutdown does for a local run; Ray kills what is left after RAY_JOB_STOP_WAIT_TIME_S.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.jobs.checkpoints import upload_rank_state
from core.jobs.states import JobStatus
from core.persistence.db import session_scope
from core.persistence.models import Job, utcnow
from core.retry import db_retry
from core.runs.ray_submit import OUTCOME_MARK
from core.settings import Settings, get_settings
from core.storage import worker_storage

log = logging.getLogger(__name__)


class Channel:
    """A small actor between the driver and rank 0: the hand-back request one way, the run's
    outcome the other (Ray Train returns nothing from a worker's function), and rank 0's node
    to the other ranks (those elsewhere fetch their own files). It lives on the
    driver's node, so that losing another node never takes it (rank 0 would fail the job)."""

    def __init__(self) -> None:
        self.asked = False
        self.outcome: dict | None = None
        self.lead_node: str | None = None

    def set_lead_node(self, node: str) -> None:
        self.lead_node = node

    def get_lead_node(self) -> str | None:
        return self.lead_node

    def ask_back(self) -> None:
        self.asked = True

    def asked_back(self) -> bool:
        return self.asked

    def set_outcome(self, outcome: dict) -> None:
        self.outcome = outcome

    def get_outcome(self) -> dict | None:
        return self.outcome


def lost_reason(job: Job | None, attempt: int, now: Any, grace_s: float) -> str | None:
    """Why run `attempt + 1` no longer owns the job (end its Ray job), or None.

    Before rank 0 claims the job it is still queued at `attempt`; once claimed, running at
    `attempt + 1` under a lease its worker renews. A finished or paused job is left to rank 0
    to stop on (it checkpoints first) for `grace_s` past its last lease."""
    if job is None:
        return "the job was deleted"
    if job.attempts > attempt + 1 or (job.attempts == attempt + 1 and _queued(job)):
        return "another run took the job"
    if job.attempts < attempt + 1:
        return None  # not claimed yet: rank 0 is loading data
    expires = job.lease_expires_at
    lapsed = expires is None or (now - expires).total_seconds() > 0
    if job.status == JobStatus.RUNNING.value and lapsed:
        return "the job's worker stopped renewing its lease"
    if job.status != JobStatus.RUNNING.value and (
        expires is None or (now - expires).total_seconds() > grace_s
    ):
        return f"the job is {job.status} and its run did not stop"
    return None


def _queued(job: Job) -> bool:
    return job.status in (JobStatus.QUEUED.value, JobStatus.VALIDATING_FILES.value)


def watch_lease(settings: Settings, job_id: str, attempt: int) -> None:
    """The watchdog thread: exit the driver (ending the gang) once the run lost the job."""
    grace = settings.jobs.stop_grace_s + settings.jobs.cancel_grace_s
    while True:
        time.sleep(settings.jobs.lease_heartbeat_s)
        try:
            with session_scope(settings.resolved_database_url) as session:
                reason = lost_reason(session.get(Job, job_id), attempt, utcnow(), grace)
        except Exception as exc:  # the database is away: the lease has slack, look again
            log.warning("lease check of %s: %s", job_id, exc)
            continue
        if reason is not None:
            log.error("ending the Ray job of %s: %s", job_id, reason)
            os._exit(3)


def rank_main(config: dict[str, Any]) -> None:
    """One rank, in a Ray Train worker: the job (rank 0) or what rank 0 shares."""
    import ray

    from core.logging_setup import configure_logging, job_fields, set_fields
    from core.runs.runner import run_attempt
    from core.training import distributed

    settings = get_settings()
    configure_logging(settings)
    set_fields(job_fields(settings.resolved_database_url, config["job_id"]))
    distributed.init()  # a no-op: Ray Train set up the process group
    channel, node = config["channel"], ray.get_runtime_context().get_node_id()
    if not distributed.is_main():
        follow(settings, config["job_id"], channel, node)
        return
    ray.get(channel.set_lead_node.remote(node))  # before rank 0 shares its context
    try:
        outcome = run_attempt(
            settings,
            config["job_id"],
            config["worker"],
            attempt=config["attempt"],
            hand_back=_Poll(channel),
        )
    finally:
        distributed.release()
    ray.get(channel.set_outcome.remote(asdict(outcome)))


def follow(settings: Settings, job_id: str, channel: Any, node: str) -> None:
    """A rank > 0: train what rank 0 shares (core.training.distributed). On another node than
    rank 0's, its paths are not here: the rank fetches its own copies into its own temp
    directory (core.runs.weights.localize)."""
    import ray

    from core.methods import get_method
    from core.runs.weights import localize
    from core.tempdirs import temp_root
    from core.training import distributed

    ctx = distributed.follow(upload_state(settings, job_id))
    if ctx is None:
        return
    rank = distributed.rank()
    prefix = f"lathe-{job_id}-rank{rank}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=temp_root(settings)) as tmp:
        if ray.get(channel.get_lead_node.remote()) != node:
            ctx = localize(settings, ctx, Path(tmp), rank)
            log.info(
                "rank %d fetched its own start weights %s and resume state %s into %s",
                rank, ctx.base_model_path, ctx.resume_from, tmp,
            )  # fmt: skip
        get_method(ctx.spec.method.type)(ctx)


def upload_state(settings: Settings, job_id: str) -> Callable[[int, Path], None]:
    """A rank's upload of its own part of the checkpoint at a step (RankReporter.checkpoint;
    only called where the rank's checkpoint folder is not rank 0's)."""
    from core.training import distributed

    def upload(step: int, state_dir: Path) -> None:
        job = db_retry(settings, "job lookup", lambda s: _detached_job(s, job_id))
        if job is None:
            raise LookupError(f"{job_id} was deleted")  # the rank crashes: rank 0 sees it
        upload_rank_state(worker_storage(settings), job, step, state_dir)
        log.info("rank %d uploaded its own files of checkpoint-%d", distributed.rank(), step)

    return upload


def _detached_job(session: Session, job_id: str) -> Job | None:
    job = session.get(Job, job_id)
    if job is not None:
        session.expunge(job)
    return job


class _Poll:
    """rank 0's `hand_back()`: the channel's flag, asked at most every half second (it is
    called at every step boundary)."""

    def __init__(self, channel: Any) -> None:
        self.channel, self.value, self.at = channel, False, 0.0

    def __call__(self) -> bool:
        import ray

        if not self.value and time.monotonic() - self.at >= 0.5:
            self.at = time.monotonic()
            try:
                self.value = bool(ray.get(self.channel.asked_back.remote(), timeout=30))
            except Exception as exc:  # the driver's node is going: Ray ends the gang next
                log.warning("hand-back channel unreachable: %s", exc)
        return self.value


def trainer(config: dict[str, Any], nodes: int, per_node: int) -> Any:
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    scaling = ScalingConfig(
        num_workers=nodes * per_node,
        use_gpu=use_gpu,
        resources_per_worker={"GPU": 1} if use_gpu else {"CPU": 1},
        placement_strategy="STRICT_SPREAD" if per_node == 1 else "SPREAD",
    )
    return TorchTrainer(
        rank_main,
        train_loop_config=config,
        scaling_config=scaling,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(
            name=f"lathe-{config['job_id']}-run{config['attempt'] + 1}",
            failure_config=FailureConfig(max_failures=0),
        ),
    )


def main(argv: list[str]) -> int:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    job_id, worker, attempt, nodes, per_node = argv
    settings = get_settings()
    ray.init(log_to_driver=True)
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    channel = ray.remote(num_cpus=0)(Channel).options(scheduling_strategy=here).remote()
    asked = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: asked.set())
    threading.Thread(target=lambda: asked.wait() and channel.ask_back.remote(), daemon=True).start()
    threading.Thread(target=watch_lease, args=(settings, job_id, int(attempt)), daemon=True).start()
    config = {"job_id": job_id, "worker": worker, "attempt": int(attempt), "channel": channel}
    trainer(config, int(nodes), int(per_node)).fit()
    outcome = ray.get(channel.get_outcome.remote())
    if outcome is None:
        log.error("rank 0 of %s reported no outcome", job_id)
        return 1
    print(OUTCOME_MARK + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:]))
