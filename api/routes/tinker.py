"""Tinker's wire (`/api/v1/...`, what the `tinker` SDK 0.38 calls): thin routes over
core.tinker.service. Bodies are read raw: forward_backward's is protobuf (maybe zstd), the
rest JSON. Failed futures are HTTP 200 with {"error", "category"} (the SDK retries 408/409/
429/5xx for minutes, so those are never used for a permanent error); bad input at submit is a
400 with the usual error envelope, which the SDK raises as BadRequestError.

`retrieve_future` waits on the process's one LISTEN connection (core.tinker.wakeups) for the
trainer's NOTIFY that the request is done, then reads the row: the answer leaves within a
database round trip of the result's commit. On SQLite it polls the row with a short backoff.

Excluded from the OpenAPI document: its clients are the tinker SDKs, whose schema is theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import get_org
from core.errors import InvalidRequest
from core.persistence.db import session_scope
from core.tinker import service, vllm_sampling, wakeups
from core.tinker.tokenizer_files import tokenizer_id

PROTO = "application/x-protobuf"
POLL_BACKOFF_S = (0.01, 0.2)
"""retrieve_future's re-read delays where there is no NOTIFY (SQLite, or the listener is down)."""


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Closes the process's result listener (opened by the first retrieve_future)."""
    app.state.tinker_done = None
    yield
    if app.state.tinker_done is not None:
        await app.state.tinker_done.close()


router = APIRouter(prefix="/api/v1", include_in_schema=False, lifespan=_lifespan)


async def _db(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(session, *args, **kwargs)` in a thread, in one of the API's bounded DB slots."""
    url = request.app.state.settings.resolved_database_url

    def run() -> Any:
        with session_scope(url) as db:
            return fn(db, *args, **kwargs)

    async with request.app.state.session_slots.hold():
        return await run_in_threadpool(run)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise InvalidRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body


@router.post("/client/config")
async def client_config(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "pjwt_auth_enabled": False,
        "use_pyqwest_transport": False,
        "proto_compress_fwdbwd": False,
        "sample_use_retrieve_futures": False,
        "custom_loss_server_side": False,
        "sample_join_sampling_session": False,
        "fwdbwd_max_chunk_bytes_count": int(settings.server.max_json_bytes * 0.8),
    }


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/telemetry")
async def telemetry() -> dict[str, str]:
    return {"status": "accepted"}  # Lathe keeps no client telemetry


@router.get("/get_server_capabilities")
async def capabilities(request: Request) -> dict[str, Any]:
    await get_org(request)
    settings = request.app.state.settings
    return {
        "supported_models": [
            {"model_name": name, "trainable": True, "sampleable": True}
            for name in settings.base_models
        ]
    }


@router.post("/create_session")
async def create_session(request: Request) -> dict[str, Any]:
    org, body = await get_org(request), await _json(request)
    sid = await _db(request, service.create_session, org.id, body.get("user_metadata"))
    return {"session_id": sid, "type": "create_session"}


@router.post("/session_heartbeat")
async def session_heartbeat(request: Request) -> Response:
    org, body = await get_org(request), await _json(request)
    alive = await _db(request, service.heartbeat, org.id, str(body.get("session_id", "")))
    if not alive:
        return JSONResponse({"detail": "session finished"}, status_code=410)
    return JSONResponse({"type": "session_heartbeat"})


@router.post("/sessions/{session_id}/finish")
async def finish_session(session_id: str, request: Request) -> dict[str, Any]:
    org = await get_org(request)
    await _db(request, service.finish_session, org.id, session_id)
    return {"status": "finished"}


@router.post("/create_model")
async def create_model(request: Request) -> dict[str, Any]:
    org, body = await get_org(request), await _json(request)
    settings = request.app.state.settings
    rid, mid = await _db(request, service.create_model, settings, org.id, body, from_path=False)
    return {"request_id": rid, "model_id": mid}


@router.post("/get_info")
async def get_info(request: Request) -> dict[str, Any]:
    org, body = await get_org(request), await _json(request)

    def info(db, org_id: str, model_id: str) -> dict[str, Any]:
        m = service.get_model(db, org_id, model_id)
        return {
            "model_id": m.id,
            "model_data": {"model_name": m.base_model, "tokenizer_id": tokenizer_id(m.base_model)},
            "is_lora": True,
            "lora_rank": m.lora["rank"],
            "model_name": m.base_model,
            "optimizer_config": {"type": "adamw"},
        }

    return await _db(request, info, org.id, str(body.get("model_id", "")))


async def _submit(request: Request, kind: str, body: bytes, model_id: Any, seq_id: Any) -> dict:
    org = await get_org(request)
    rid = await _db(request, service.submit, org.id, kind, str(model_id), seq_id, body)
    return {"request_id": rid, "model_id": str(model_id)}


@router.post("/forward_backward")
async def forward_backward(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "zstd":
        import zstandard

        try:
            raw = zstandard.ZstdDecompressor().decompress(
                raw, max_output_size=request.app.state.settings.server.max_json_bytes * 8
            )
        except zstandard.ZstdError as exc:
            raise InvalidRequest(f"body is not valid zstd: {exc}") from exc
    if not request.headers.get("content-type", "").startswith(PROTO):
        raise InvalidRequest(f"forward_backward takes {PROTO} bodies (the tinker SDK's)")
    from core.tinker.codec import parse_forward_backward

    req = await run_in_threadpool(parse_forward_backward, raw)  # a 400 naming the field
    return await _submit(request, "forward_backward", raw, req.model_id, req.seq_id)


async def _json_submit(request: Request, kind: str) -> dict[str, Any]:
    body = await _json(request)
    raw = json.dumps(body).encode()
    return await _submit(request, kind, raw, body.get("model_id", ""), body.get("seq_id"))


@router.post("/optim_step")
async def optim_step(request: Request) -> dict[str, Any]:
    return await _json_submit(request, "optim_step")


@router.post("/save_weights")
async def save_weights(request: Request) -> dict[str, Any]:
    return await _json_submit(request, "save_weights")


@router.post("/save_weights_for_sampler")
async def save_weights_for_sampler(request: Request) -> dict[str, Any]:
    return await _json_submit(request, "save_weights_for_sampler")


@router.post("/load_weights")
async def load_weights(request: Request) -> dict[str, Any]:
    body = await _json(request)
    if body.get("model_id"):
        org = await get_org(request)
        await _db(request, service.get_checkpoint, org.id, str(body.get("path", "")), "weights")
        return await _submit(
            request, "load_weights", json.dumps(body).encode(), body["model_id"], body.get("seq_id")
        )
    org, settings = await get_org(request), request.app.state.settings
    rid, mid = await _db(request, service.create_model, settings, org.id, body, from_path=True)
    return {"request_id": rid, "model_id": mid}


@router.post("/create_sampling_session")
async def create_sampling_session(request: Request) -> dict[str, Any]:
    org, body = await get_org(request), await _json(request)
    settings = request.app.state.settings
    row = await _db(
        request,
        service.create_sampler,
        settings,
        org.id,
        str(body.get("session_id", "")),
        body.get("base_model"),
        body.get("model_path"),
    )
    return {"sampling_session_id": row.id, "type": "create_sampling_session"}


@router.get("/samplers/{sampler_id}")
async def get_sampler(sampler_id: str, request: Request) -> dict[str, Any]:
    org = await get_org(request)
    row = await _db(request, service.get_sampler, org.id, sampler_id)
    return {"sampler_id": row.id, "base_model": row.base_model, "model_path": row.model_path}


@router.post("/asample")
async def asample(request: Request) -> dict[str, Any]:
    org, body = await get_org(request), await _json(request)
    settings = request.app.state.settings
    rid, ids, target = await _db(request, vllm_sampling.submit, settings, org.id, body)
    if target is not None:  # on the inference service's vLLM, else on the trainer
        request.app.state.tinker_vllm.start(rid, target, body)
    return {"request_id": rid, "sample_sequence_ids": ids}


def _peek(db, settings, org_id: str, request_id: str) -> tuple:
    row = service.get_request(db, org_id, request_id)
    if row.status == "pending":
        service.fail_if_orphaned(db, settings, row)
    vllm_sampling.requeue_if_lost(db, settings, row)
    return row.status, row.result, row.result_type, row.error, row.category, row.model_id


async def _try_again(request: Request, org_id: str, rid: str, model_id: str | None) -> dict:
    """`try_again`, saying "paused_capacity" while no trainer has room for the client (the
    SDK logs the reason)."""
    body = {"type": "try_again", "request_id": rid, "queue_state": "active"}
    if model_id is not None:
        model = await _db(request, service.get_model, org_id, model_id)
        if model.worker is None:
            body["queue_state"] = "paused_capacity"
            body["queue_state_reason"] = "no Tinker trainer has room for this training client yet"
    return body


async def _listener(request: Request) -> wakeups.DoneListener | None:
    """The process's listener for finished requests, or None where it cannot listen."""
    url = request.app.state.settings.resolved_database_url
    if not wakeups.enabled(url):
        return None
    state = request.app.state
    if getattr(state, "tinker_done", None) is None:
        state.tinker_done = wakeups.DoneListener(url)
    return state.tinker_done if await state.tinker_done.start() else None


async def _until_woken(
    listener: wakeups.DoneListener | None, woken: asyncio.Event | None, timeout: float, delay: float
) -> float:
    """Waits for the next look at the row: the done NOTIFY (or RECHECK_S) while listening,
    else `delay` (returned grown, the polling backoff)."""
    if listener is not None and woken is not None and listener.listening:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), min(timeout, wakeups.RECHECK_S))
        return delay
    await asyncio.sleep(min(delay, timeout))
    return min(delay * 1.5, POLL_BACKOFF_S[1])


@router.post("/retrieve_future")
async def retrieve_future(request: Request) -> Response:
    """Long-polls the request row for up to LATHE_TINKER_POLL_S (under the SDK's 45 s)."""
    org, body = await get_org(request), await _json(request)
    settings = request.app.state.settings
    rid = str(body.get("request_id", ""))
    deadline, delay = time.monotonic() + settings.tinker.poll_s, POLL_BACKOFF_S[0]
    listener = await _listener(request)
    while True:
        # watch before reading: a NOTIFY landing between the read and the wait still wakes it
        with listener.watch(rid) if listener else contextlib.nullcontext() as woken:
            status, result, rtype, error, category, model_id = await _db(
                request, _peek, settings, org.id, rid
            )
            if status == "done":
                media = PROTO if rtype == "proto" else "application/json"
                return Response(result, media_type=media)
            if status == "failed":
                return JSONResponse({"error": error, "category": category or "unknown"})
            left = deadline - time.monotonic()
            if left <= 0:
                return JSONResponse(await _try_again(request, org.id, rid, model_id))
            delay = await _until_woken(listener, woken, left, delay)
