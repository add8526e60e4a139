"""The FastAPI application. Importing it never imports torch (fast start, small memory)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI

import core.sweeps  # noqa: F401  (registers the hook that advances sweeps: core.jobs.lifecycle)
from api import errors, metrics, ui
from api.gate import Gate, KeyCache
from api.openapi import install_openapi
from api.routes import (
    admin,
    batches,
    chat,
    classifications,
    completions,
    drift,
    embeddings,
    evals,
    files,
    graders,
    health,
    jobs,
    model_root,
    models,
    permissions,
    pipelines,
    rewards,
    sweeps,
    tinker,
    tinker_hub,
    tinker_runs,
    tokenizer,
    uploads,
    webhooks,
)
from api.sessions import SessionSlots
from api.upload_limit import BodySizeLimit
from core.inference.client import InferenceClient
from core.persistence.db import session_scope
from core.persistence.leader import Leadership
from core.ratelimit import RateLimits
from core.registry import sync_base_models
from core.settings import Settings, get_settings
from core.tempdirs import remove_dead_uploads
from core.tinker.vllm_sampling import VllmSampling
from worker import maintenance

log = logging.getLogger("lathe.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # as many threads as the database pool has connections for (core.persistence.db)
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.server.api_threads
        with session_scope(settings.resolved_database_url) as session:
            sync_base_models(session, settings)
        remove_dead_uploads(settings)  # what a killed API left mid-upload (every process)
        leader = Leadership(settings.resolved_database_url)
        tasks = maintenance.start(settings, leader)
        yield
        for task in tasks:
            task.cancel()
        leader.release()
        await app.state.tinker_vllm.close()  # what it still runs goes to the trainer
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
    app.state.tinker_vllm = VllmSampling(settings, app.state.engine)
    app.state.limits = RateLimits(settings)
    app.state.session_slots = SessionSlots(settings.server.api_threads)
    app.state.key_cache = KeyCache(settings, app.state.session_slots)
    errors.install(app)
    # the last added runs first: authenticate (and rate-limit), then bound the body
    app.add_middleware(
        BodySizeLimit,
        max_upload_bytes=settings.uploads.max_bytes,
        max_json_bytes=settings.server.max_json_bytes,
        max_part_bytes=settings.uploads.max_part_bytes,
    )
    app.add_middleware(Gate, settings=settings, cache=app.state.key_cache, limits=app.state.limits)
    metrics.install(app, settings)  # GET /metrics and the HTTP middleware (outermost)
    for module in (
        health,
        admin,
        files,
        batches,
        jobs,
        model_root,  # before drift and models: their /v1/models/{model:path} would take it
        tokenizer,
        drift,  # before models: its /v1/models/{model:path} would take /drift
        models,
        chat,
        completions,
        embeddings,
        pipelines,
        rewards,
        classifications,
        sweeps,
        graders,
        permissions,
        webhooks,
        uploads,
        evals,
        tinker,  # /api/v1: the tinker SDK's wire (core.tinker)
        tinker_hub,  # /hf: base models' tokenizers, for HF_ENDPOINT
        tinker_runs,  # /api/v1/training_runs...: the tinker SDK's RestClient
    ):
        app.include_router(module.router)
    install_openapi(app)
    ui.install(app)
    return app
