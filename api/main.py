"""The FastAPI application. Importing it never imports torch (fast start, small memory)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api import errors, metrics, ui
from api.gate import Gate, KeyCache
from api.openapi import install_openapi
from api.routes import (
    admin,
    chat,
    classifications,
    completions,
    drift,
    files,
    graders,
    health,
    jobs,
    models,
    permissions,
    pipelines,
    rewards,
    sweeps,
    tinker,
    tinker_hub,
    uploads,
    webhooks,
)
from api.sessions import SessionSlots
from api.upload_limit import BodySizeLimit
from core.inference.client import InferenceClient
from core.persistence.db import session_scope
from core.ratelimit import RateLimits
from core.registry import sync_base_models
from core.settings import Settings, get_settings
from core.storage import get_storage

log = logging.getLogger("lathe.api")


def _reconcile_once(settings: Settings) -> int:
    """Re-enqueue jobs the database says are waiting, in case their message was lost, and
    take back running jobs whose worker stopped renewing their lease (core.jobs.lease)."""
    from core.jobs.lease import expired_jobs, take_back
    from core.jobs.service import stale_jobs
    from core.jobs.sweeps import reconcile as advance_sweeps
    from core.persistence.models import utcnow
    from worker.celery_app import enqueue_job

    with session_scope(settings.resolved_database_url) as session:
        jobs_ = stale_jobs(session, settings.reconcile_after_s)
        for job in jobs_:
            job.enqueued_at = utcnow()
        lost = [j.id for j in expired_jobs(session) if take_back(session, j, settings.max_attempts)]
    for job_id in [j.id for j in jobs_] + lost:  # after commit: a worker must see it queued
        enqueue_job(job_id)
    if lost:
        log.warning("took back %d jobs whose worker lease expired: %s", len(lost), lost)
    for job_id in advance_sweeps(settings.resolved_database_url):  # committed trials
        enqueue_job(job_id)
    return len(jobs_) + len(lost)


def _sweep_once(settings: Settings) -> None:
    from core.drift.samples import prune_expired
    from core.sweeper import sweep

    with session_scope(settings.resolved_database_url) as session:
        sweep(session, get_storage(settings), settings.sweep_after_s)
        prune_expired(session, settings)  # drift samples past LATHE_DRIFT_RETENTION_DAYS


async def _sweeper(settings: Settings) -> None:
    """At start-up (what a killed API left), then every sweep interval."""
    while True:
        try:
            await run_in_threadpool(_sweep_once, settings)
        except Exception:
            log.exception("sweeper pass failed")
        await asyncio.sleep(settings.sweep_interval_s)


async def _webhook_deliverer(settings: Settings) -> None:
    """Sends due webhook deliveries (core.webhooks.delivery), outside any request."""
    from core.webhooks.delivery import deliver_due

    while True:
        await asyncio.sleep(settings.webhook_poll_interval_s)
        try:
            await run_in_threadpool(deliver_due, settings)
        except Exception:
            log.exception("webhook delivery pass failed")


async def _reconciler(settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.reconcile_interval_s)
        try:
            if n := await run_in_threadpool(_reconcile_once, settings):
                log.warning("re-enqueued %d waiting jobs", n)
        except Exception:
            log.exception("reconciler pass failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # as many threads as the database pool has connections for (core.persistence.db)
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        with session_scope(settings.resolved_database_url) as session:
            sync_base_models(session, settings)
        loops = (_reconciler, _sweeper, _webhook_deliverer)
        tasks = [asyncio.create_task(loop(settings)) for loop in loops]
        yield
        for task in tasks:
            task.cancel()
        await app.state.engine.aclose()

    app = FastAPI(
        title="Lathe",
        version="0.1.0",
        description="Self-hosted fine-tuning, wire-compatible with OpenAI's fine-tuning API.",
        lifespan=lifespan,
        docs_url=None,  # /docs comes from api.ui, on vendored assets (FastAPI's uses a CDN)
        redoc_url=None,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.engine = InferenceClient(settings)  # generation runs in `lathe inference`
    app.state.limits = RateLimits(settings)
    app.state.session_slots = SessionSlots(settings.api_threads)
    app.state.key_cache = KeyCache(settings, app.state.session_slots)
    errors.install(app)
    # the last added runs first: authenticate (and rate-limit), then bound the body
    app.add_middleware(
        BodySizeLimit,
        max_upload_bytes=settings.max_upload_bytes,
        max_json_bytes=settings.max_json_bytes,
        max_part_bytes=settings.max_upload_part_bytes,
    )
    app.add_middleware(Gate, settings=settings, cache=app.state.key_cache, limits=app.state.limits)
    metrics.install(app, settings)  # GET /metrics and the HTTP middleware (outermost)
    for module in (
        health,
        admin,
        files,
        jobs,
        drift,  # before models: its /v1/models/{model:path} would take /drift
        models,
        chat,
        completions,
        pipelines,
        rewards,
        classifications,
        sweeps,
        graders,
        permissions,
        webhooks,
        uploads,
        tinker,  # /api/v1: the tinker SDK's wire (core.tinker)
        tinker_hub,  # /hf: base models' tokenizers, for HF_ENDPOINT
    ):
        app.include_router(module.router)
    install_openapi(app)
    ui.install(app)
    return app
