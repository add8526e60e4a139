"""The FastAPI application. Importing it never imports torch (fast start, small memory)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api import errors
from api.routes import (
    chat,
    classifications,
    completions,
    files,
    health,
    jobs,
    models,
    pipelines,
    rewards,
)
from api.upload_limit import UploadSizeLimit
from core.inference.client import InferenceClient
from core.persistence.db import session_scope
from core.registry import sync_base_models
from core.settings import Settings, get_settings

log = logging.getLogger("lathe.api")


def _reconcile_once(settings: Settings) -> int:
    """Re-enqueue jobs the database says are waiting, in case their message was lost."""
    from core.jobs.service import stale_jobs
    from core.persistence.models import utcnow
    from worker.celery_app import enqueue_job

    with session_scope(settings.resolved_database_url) as session:
        jobs_ = stale_jobs(session, settings.reconcile_after_s)
        for job in jobs_:
            job.enqueued_at = utcnow()
            enqueue_job(job.id)
    return len(jobs_)


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
        with session_scope(settings.resolved_database_url) as session:
            sync_base_models(session, settings)
        task = asyncio.create_task(_reconciler(settings))
        yield
        task.cancel()
        await app.state.engine.aclose()

    app = FastAPI(
        title="Lathe",
        version="0.1.0",
        description="Self-hosted fine-tuning, wire-compatible with OpenAI's fine-tuning API.",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.engine = InferenceClient(settings)  # generation runs in `lathe inference`
    errors.install(app)
    app.add_middleware(UploadSizeLimit, max_bytes=settings.max_upload_bytes)
    for module in (
        health,
        files,
        jobs,
        models,
        chat,
        completions,
        pipelines,
        rewards,
        classifications,
    ):
        app.include_router(module.router)
    return app
