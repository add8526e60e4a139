"""Prometheus metrics that are not HTTP: jobs by status (read from the database when scraped)
and the training worker's own (step time, tokens/s, training runs).

Training runs in a child process of the worker (core.runs.supervisor), so the worker's metrics
use prometheus_client's multiprocess mode: `worker.observability` (before prometheus_client is
imported) points both processes at one directory of value files,
and the worker's exporter, when `LATHE_WORKER_METRICS_PORT` is set (`serve_worker_metrics`),
adds them up. Training code feeds
them through `StepTimer`, which core.training.callbacks.ReporterCallback drives, so every
method that trains through a transformers/TRL trainer reports without knowing of Prometheus.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.persistence.db import session_scope
from core.persistence.models import Job
from core.settings import Settings

log = logging.getLogger("lathe.observability")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # worker.observability sets it

STEP_SECONDS = Histogram(
    "lathe_worker_step_seconds",
    "Wall time of one optimizer step.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TOKENS_PER_SECOND = Gauge(
    "lathe_worker_tokens_per_second",
    "Tokens trained per second over the last logged steps.",
    multiprocess_mode="mostrecent",
)
TOKENS = Counter("lathe_worker_tokens_total", "Tokens trained (as the trainer counts them).")
STEPS = Counter("lathe_worker_steps_total", "Optimizer steps run.")
TRAININGS = Counter(
    "lathe_worker_trainings_total",
    "Training runs that ended, by how: completed, or stopped (a cancel or a pause).",
    ["outcome"],
)
# Status names, listed so a status with no jobs still reads 0 (core.jobs.states.JobStatus).
_STATUSES = ("validating_files", "queued", "running", "paused", "succeeded", "failed",
             "cancelled")  # fmt: skip


def job_counts(database_url: str) -> dict[str, int]:
    """Jobs per status, every organization together."""
    with session_scope(database_url) as session:
        rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {status: 0 for status in _STATUSES} | {status: int(n) for status, n in rows}


class JobsCollector(Collector):
    """`lathe_jobs{status}` and `lathe_queue_depth`, counted in the database at each scrape
    (the database is the truth; a counter kept in one API process would miss the others)."""

    def __init__(self, database_url: str):
        self.url = database_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = job_counts(self.url)
        jobs = GaugeMetricFamily("lathe_jobs", "Jobs by status.", labels=["status"])
        for status, n in sorted(counts.items()):
            jobs.add_metric([status], n)
        yield jobs
        yield GaugeMetricFamily(
            "lathe_queue_depth", "Jobs queued for a worker.", value=counts["queued"]
        )


class StepTimer:
    """Feeds the worker metrics from a trainer's step and log callbacks."""

    def __init__(self) -> None:
        self._step_started: float | None = None
        self._tokens: tuple[float, float] | None = None  # (time, cumulative tokens) last log

    def step_begin(self) -> None:
        self._step_started = time.perf_counter()

    def step_end(self) -> None:
        if self._step_started is not None:
            STEP_SECONDS.observe(time.perf_counter() - self._step_started)
            self._step_started = None
        STEPS.inc()

    def logged(self, logs: dict[str, Any]) -> None:
        """TRL logs the cumulative `num_tokens`; tokens/s is its rate between two logs."""
        if "num_tokens" not in logs:
            return
        now, total = time.perf_counter(), float(logs["num_tokens"])
        if self._tokens is not None and total > self._tokens[1] and now > self._tokens[0]:
            TOKENS.inc(total - self._tokens[1])
            TOKENS_PER_SECOND.set((total - self._tokens[1]) / (now - self._tokens[0]))
        self._tokens = (now, total)

    @staticmethod
    def finished(stopped: bool) -> None:
        TRAININGS.labels(outcome="stopped" if stopped else "completed").inc()


def serve_worker_metrics(settings: Settings) -> int | None:
    """Start the worker's exporter (a daemon thread) when a port is configured. A port already
    taken (two workers on one host with one setting) costs the metrics, not the worker."""
    port = settings.metrics.worker_port
    if port is None:
        return None
    registry = None
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    try:
        start_http_server(port, registry=registry or REGISTRY)
    except OSError as exc:
        log.error("worker metrics not served: port %d: %s", port, exc)
        return None
    log.info("worker metrics on :%d/metrics", port)
    return port
