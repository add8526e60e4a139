"""The API side of the Tinker protocol: sessions, training clients, futures and samplers as
Postgres rows. Nothing here computes; a trainer (core.tinker.trainer) applies the requests.

Every query filters by organization: another organization's model, path, sampler or future is
a 404, exactly as one that does not exist.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from core.errors import InvalidRequest, NotFound
from core.ids import new_id
from core.persistence.models import utcnow
from core.persistence.tinker_models import (
    TinkerCheckpoint,
    TinkerModel,
    TinkerRequest,
    TinkerSampler,
    TinkerSession,
)
from core.settings import Settings
from core.tinker import wakeups
from core.tinker.paths import parse_path

LIVE = ("pending", "ready")


def create_session(db: Session, org_id: str, user_metadata: dict[str, Any] | None) -> str:
    sid = new_id("ts_", 16)
    db.add(TinkerSession(id=sid, organization_id=org_id, user_metadata=user_metadata or {}))
    return sid


def get_session(db: Session, org_id: str, session_id: str) -> TinkerSession:
    row = db.get(TinkerSession, session_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"no session {session_id!r}", param="session_id")
    return row


def heartbeat(db: Session, org_id: str, session_id: str) -> bool:
    """False once the session is finished (the SDK then stops its heartbeat: a 410)."""
    row = get_session(db, org_id, session_id)
    if row.finished_at is not None:
        return False
    row.heartbeat_at = utcnow()
    return True


def finish_session(db: Session, org_id: str, session_id: str) -> None:
    """Releases the session's training clients: the trainer drops them on its next pass."""
    row = get_session(db, org_id, session_id)
    row.finished_at = utcnow()
    for model in db.scalars(select(TinkerModel).where(TinkerModel.session_id == session_id)):
        if model.status in LIVE:
            model.status, model.error = "released", "the session was closed"


def get_model(db: Session, org_id: str, model_id: str, param: str = "model_id") -> TinkerModel:
    row = db.get(TinkerModel, model_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"no training client {model_id!r}", param=param)
    return row


def _check_base(settings: Settings, base_model: str) -> None:
    if base_model not in settings.base_models:
        raise NotFound(
            f"unknown base_model {base_model!r}; GET /api/v1/get_server_capabilities lists them",
            param="base_model",
            code="model_not_found",
        )


def _check_quota(db: Session, settings: Settings, org_id: str) -> None:
    live = db.scalar(
        select(func.count())
        .select_from(TinkerModel)
        .where(TinkerModel.organization_id == org_id, TinkerModel.status.in_(LIVE))
    )
    if live >= settings.tinker.max_clients_per_org:
        raise InvalidRequest(
            f"this organization already has {live} live training clients, the most it may "
            "hold (LATHE_TINKER_MAX_CLIENTS_PER_ORG); close a ServiceClient or wait for an "
            "idle one to be released",
            param="base_model",
            code="too_many_training_clients",
        )


def lora_config(settings: Settings, cfg: dict[str, Any]) -> dict[str, Any]:
    rank = cfg.get("rank")
    if not isinstance(rank, int) or not 1 <= rank <= settings.tinker.max_lora_rank:
        raise InvalidRequest(
            f"lora_config.rank must be an integer from 1 to {settings.tinker.max_lora_rank}",
            param="lora_config.rank",
        )
    out = {"rank": rank, "seed": cfg.get("seed")}
    for flag in ("train_mlp", "train_attn", "train_unembed"):
        out[flag] = bool(cfg.get(flag, True))
    if not (out["train_mlp"] or out["train_attn"] or out["train_unembed"]):
        raise InvalidRequest(
            "at least one of train_mlp, train_attn, train_unembed must be true",
            param="lora_config",
        )
    return out


def _add_request(db: Session, org_id: str, dedupe: str, kind: str, body: bytes, **cols: Any) -> str:
    """Insert a request (a future) unless its dedupe key exists: then the original id."""
    existing = db.scalar(select(TinkerRequest).where(TinkerRequest.dedupe == dedupe))
    if existing is not None:
        if existing.organization_id != org_id:
            raise NotFound("no such training client", param="model_id")
        return existing.id
    rid = new_id("tr_", 20)
    try:
        with db.begin_nested():
            db.add(
                TinkerRequest(
                    id=rid, organization_id=org_id, dedupe=dedupe, kind=kind, body=body, **cols
                )
            )
    except IntegrityError:  # a retry raced us: the first one wins
        return db.scalar(select(TinkerRequest.id).where(TinkerRequest.dedupe == dedupe))
    wakeups.notify(db, wakeups.NEW_CHANNEL)  # wakes the trainers at commit
    return rid


def create_model(
    db: Session, settings: Settings, org_id: str, body: dict[str, Any], *, from_path: bool
) -> tuple[str, str]:
    """(request_id, model_id) of `create_model`, or of `load_weights` without a model_id
    (the SDK's create-from-state: the id is `{session}:train:{model_seq_id}` by convention)."""
    session_id = str(body.get("session_id", ""))
    get_session(db, org_id, session_id)
    seq = body.get("model_seq_id")
    if not isinstance(seq, int) or seq < 0:
        raise InvalidRequest("model_seq_id must be a non-negative integer", param="model_seq_id")
    model_id = f"{session_id}:train:{seq}"
    dedupe = f"{session_id}#model{seq}"
    if db.get(TinkerModel, model_id) is None:
        _check_quota(db, settings, org_id)
        if from_path:
            ckpt = get_checkpoint(db, org_id, str(body.get("path", "")), kind="weights")
            base, lora = ckpt.base_model, ckpt.lora
        else:
            _check_optimizer(body.get("optimizer_config"))
            base = str(body.get("base_model", ""))
            _check_base(settings, base)
            lora = lora_config(settings, body.get("lora_config") or {})
        db.add(
            TinkerModel(
                id=model_id,
                organization_id=org_id,
                session_id=session_id,
                base_model=base,
                lora=lora,
                status="pending",
                applied_seq=0,
            )
        )
        db.flush()
    kind = "load_weights" if from_path else "create_model"
    rid = _add_request(db, org_id, dedupe, kind, json.dumps(body).encode(), model_id=model_id)
    return rid, model_id


def _check_optimizer(cfg: Any) -> None:
    if cfg is not None and (not isinstance(cfg, dict) or cfg.get("type", "adamw") != "adamw"):
        raise InvalidRequest(
            "only optimizer_config type 'adamw' is supported", param="optimizer_config.type"
        )


def submit(db: Session, org_id: str, kind: str, model_id: str, seq_id: Any, body: bytes) -> str:
    """A training-side request of a live client, deduplicated on (model, seq_id)."""
    model = get_model(db, org_id, model_id)
    if model.status not in LIVE:
        raise InvalidRequest(
            f"training client {model_id} is {model.status}: {model.error or ''}".strip(),
            param="model_id",
            code="training_client_gone",
        )
    if not isinstance(seq_id, int) or seq_id < 1:
        raise InvalidRequest("seq_id must be a positive integer", param="seq_id")
    return _add_request(
        db, org_id, f"{model_id}#{seq_id}", kind, body, model_id=model_id, seq_id=seq_id
    )


def get_checkpoint(
    db: Session, org_id: str, path: str, kind: str | None = None, param: str = "path"
) -> TinkerCheckpoint:
    _, path_kind, _ = parse_path(path, param)
    row = db.get(TinkerCheckpoint, path)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"no checkpoint {path!r}", param=param)
    if kind is not None and path_kind != kind:
        raise InvalidRequest(f"{param} must be a {kind} path (save_state), got {path}", param=param)
    return row


def create_sampler(
    db: Session,
    settings: Settings,
    org_id: str,
    session_id: str,
    base: str | None,
    path: str | None,
) -> TinkerSampler:
    get_session(db, org_id, session_id)
    if path:
        ckpt = get_checkpoint(db, org_id, path, param="model_path")
        base = ckpt.base_model
    elif base:
        _check_base(settings, base)
    else:
        raise InvalidRequest("give base_model or model_path", param="base_model")
    row = TinkerSampler(
        id=new_id("ss_", 16),
        organization_id=org_id,
        session_id=session_id,
        base_model=base,
        model_path=path,
    )
    db.add(row)
    db.flush()
    return row


def get_sampler(db: Session, org_id: str, sampler_id: str) -> TinkerSampler:
    row = db.get(TinkerSampler, sampler_id)
    if row is None or row.organization_id != org_id:
        raise NotFound(f"no sampling session {sampler_id!r}", param="sampling_session_id")
    return row


def submit_sample(
    db: Session, settings: Settings, org_id: str, body: dict[str, Any], kind: str = "sample"
) -> tuple[str, list[str]]:
    """`kind`: "sample" for the trainer, "vllm_sample" for the API's task that runs it on
    vLLM (core.tinker.vllm_sampling)."""
    sampler = get_sampler(db, org_id, str(body.get("sampling_session_id", "")))
    n = body.get("num_samples", 1)
    if not isinstance(n, int) or not 1 <= n <= settings.tinker.max_samples:
        raise InvalidRequest(
            f"num_samples must be from 1 to {settings.tinker.max_samples}", param="num_samples"
        )
    check_sample_request(settings, body)
    seq = body.get("seq_id", 0)
    rid = _add_request(
        db,
        org_id,
        f"{sampler.id}#{seq}",
        kind,
        json.dumps(body).encode(),
        sampler_id=sampler.id,
        seq_id=int(seq),
    )
    return rid, [f"{sampler.id}:{seq}:{i}" for i in range(n)]


def check_sample_request(settings: Settings, body: dict[str, Any]) -> None:
    """Refuse, naming the field, what the sampler would not honour."""
    for field in ("topk_prompt_logprobs", "topk_sample_logprobs", "prompt_alt_tokens_k"):
        if body.get(field):
            raise InvalidRequest(f"{field} is not supported by this server", param=field)
    for field in ("prompt_logprobs_last_n", "target_prompt_logprobs"):
        if body.get(field) is not None:
            raise InvalidRequest(f"{field} is not supported by this server", param=field)
    if body.get("record_stability_info"):
        raise InvalidRequest(
            "record_stability_info (for the stable_reinforce loss) is not supported",
            param="record_stability_info",
        )
    params = body.get("sampling_params") or {}
    mt = params.get("max_tokens")
    if mt is not None and (
        not isinstance(mt, int) or not 0 <= mt <= settings.tinker.max_sample_tokens
    ):
        raise InvalidRequest(
            f"sampling_params.max_tokens must be from 0 to {settings.tinker.max_sample_tokens}",
            param="sampling_params.max_tokens",
        )
    t = params.get("temperature", 1.0)
    if not isinstance(t, int | float) or t < 0:
        raise InvalidRequest(
            "sampling_params.temperature must be >= 0", param="sampling_params.temperature"
        )
    p = params.get("top_p", 1.0)
    if not isinstance(p, int | float) or not 0 < p <= 1:
        raise InvalidRequest(
            "sampling_params.top_p must be in (0, 1]", param="sampling_params.top_p"
        )
    k = params.get("top_k", -1)
    if not isinstance(k, int) or (k < 1 and k != -1):
        raise InvalidRequest(
            "sampling_params.top_k must be -1 or >= 1", param="sampling_params.top_k"
        )
    chunks = (body.get("prompt") or {}).get("chunks") or []
    if any(c.get("type", "encoded_text") != "encoded_text" for c in chunks):
        raise InvalidRequest("only encoded_text prompt chunks are supported", param="prompt.chunks")
    if not any(c.get("tokens") for c in chunks):
        raise InvalidRequest("prompt has no tokens", param="prompt")


def get_request(db: Session, org_id: str, request_id: str) -> TinkerRequest:
    """The future's row without its request body (a forward_backward chunk's can be MBs,
    and a long-poll reads the row more than once)."""
    row = db.get(TinkerRequest, request_id, options=[defer(TinkerRequest.body)])
    if row is None or row.organization_id != org_id:
        raise NotFound(f"no future {request_id!r}", param="request_id")
    return row


def fail_if_orphaned(db: Session, settings: Settings, row: TinkerRequest) -> None:
    """A pending request of a client whose trainer stopped renewing its lease will never be
    applied: fail it (and the client) with a message saying what was lost."""
    if row.model_id is None:
        return
    model = db.get(TinkerModel, row.model_id)
    if model is None:
        return
    now = utcnow()
    lost = model.lease_until is not None and model.lease_until < now
    if lost and model.status in LIVE:
        model.status = "failed"
        model.error = (
            f"the trainer holding training client {model.id} stopped ({model.worker}); its "
            "unsaved weights are lost: create a client from your last save_state"
        )
    if model.status not in LIVE:
        row.status, row.category, row.finished_at = "failed", "server", now
        row.error = model.error or f"training client {model.id} is {model.status}"


def lease_deadline(settings: Settings) -> Any:
    return utcnow() + timedelta(seconds=settings.tinker.lease_s)


def expire_tinker_checkpoints(db: Session) -> int:
    """Drop checkpoints past their `ttl_seconds` (and the served copy of sampler weights);
    the sweeper (core.cleanup) then removes their bytes as orphans."""
    from sqlalchemy import delete

    from core.persistence.models import Model

    expired = db.scalars(
        select(TinkerCheckpoint.path).where(TinkerCheckpoint.expires_at < utcnow())
    ).all()
    if expired:
        db.execute(delete(Model).where(Model.id.in_(expired), Model.kind == "tinker"))
        db.execute(delete(TinkerCheckpoint).where(TinkerCheckpoint.path.in_(expired)))
    return len(expired)
