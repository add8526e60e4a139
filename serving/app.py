"""`lathe inference`: the inference service's internal HTTP API, apart from the public API.

    POST /internal/{chat/completions,completions,rewards,classifications}
         {"model": {"id", "base_model", "artifact_key"}, "body": {...}}
    POST /internal/tinker/sample   the same, body a Tinker SampleRequest → protobuf
    GET  /health, GET /internal/stats

The public API authenticates, resolves the model and validates OpenAI's fields, then calls
here; answers are OpenAI's JSON or SSE, with `x-lathe-backend` naming who served them. It
binds to localhost in the embedded default; in production it is its own service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from api import errors
from core.errors import LatheError
from core.inference import priority
from core.model_store import StoredModel
from core.settings import Settings, get_settings
from core.tinker import vllm_sampling
from serving import reads

log = logging.getLogger("lathe.inference")
VLLM_HEADER = {"x-lathe-backend": "vllm"}


class InternalRequest(BaseModel):
    model: dict
    body: dict

    def stored(self) -> StoredModel:
        return StoredModel(**self.model)


def create_inference_app(settings: Settings | None = None) -> FastAPI:
    from core.inference.service import InferenceService

    settings = settings or get_settings()
    service = InferenceService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A request holds a worker thread while it waits for its tokens: give every request
        # the queue admits one (asyncio's default of cores + 4 would cap the batch at 6).
        threads = settings.inference.max_queue + settings.inference.max_batch + 8
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
        service.start()
        yield
        service.stop()

    app = FastAPI(title="Lathe inference (internal)", lifespan=lifespan)
    app.state.service = service
    errors.install(app)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/internal/stats")
    def stats() -> dict:
        return service.stats()

    async def generate(op: str, req: InternalRequest, request: Request):
        priority.current.set(priority.from_header(request.headers.get(priority.HEADER)))
        name, answer = await service.handle(op, req.stored(), req.body)
        headers = {"x-lathe-backend": name}
        if isinstance(answer, dict):
            return JSONResponse(answer, headers=headers)
        try:
            first = await anext(answer)  # a refusal before the first chunk is a plain error
        except StopAsyncIteration:
            first = None
        return StreamingResponse(
            _sse(first, answer), media_type="text/event-stream", headers=headers
        )

    @app.post("/internal/chat/completions")
    async def chat(req: InternalRequest, request: Request):
        return await generate("chat", req, request)

    @app.post("/internal/completions")
    async def completions(req: InternalRequest, request: Request):
        return await generate("completion", req, request)

    @app.post("/internal/forget")
    async def forget(req: InternalRequest) -> dict:
        """A model was deleted: unload it everywhere."""
        await service.forget(req.stored())
        return {"forgotten": req.stored().id}

    @app.post("/internal/tinker/sample")
    async def tinker_sample(req: InternalRequest) -> Response:
        """A Tinker `asample` on vLLM (core.tinker.vllm_sampling): its `SampleResponse`
        proto, or a 409 where vLLM does not serve the model (the API's trainer fallback)."""
        cap = settings.tinker.max_sample_tokens
        proto = await vllm_sampling.sample(service.vllm, req.stored(), req.body, cap)
        return Response(proto, media_type="application/x-protobuf", headers=VLLM_HEADER)

    @app.post("/internal/rewards")
    def rewards(req: InternalRequest) -> dict:
        engine = service.engine
        engine.require_task(req.stored(), "reward_model")
        scores, tokens = engine.score(req.stored(), req.body["input"])
        return {"scores": scores, "tokens": tokens}

    @app.post("/internal/classifications")
    def classifications(req: InternalRequest) -> dict:
        engine = service.engine
        engine.require_task(req.stored(), "classification")
        results, tokens = engine.classify(req.stored(), req.body["input"])
        return {
            "results": [{"label": r.label, "probabilities": r.probabilities} for r in results],
            "tokens": tokens,
        }

    reads.install(app, service, InternalRequest)  # tokenizer endpoints and embeddings
    return app


async def _sse(first: dict | None, rest: AsyncIterator[dict]) -> AsyncIterator[str]:
    """OpenAI's framing; an error after the first chunk ends the stream with an error event."""
    try:
        if first is not None:
            yield f"data: {json.dumps(first)}\n\n"
        async for chunk in rest:
            yield f"data: {json.dumps(chunk)}\n\n"
    except LatheError as exc:
        error = {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
        yield f"data: {json.dumps({'error': error})}\n\n"
    except Exception:
        log.exception("stream failed")
        error = {"message": "generation failed", "type": "server_error", "param": None}
        yield f"data: {json.dumps({'error': {**error, 'code': 'backend_error'}})}\n\n"
    yield "data: [DONE]\n\n"
