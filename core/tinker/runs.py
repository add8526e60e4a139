"""Training runs and their checkpoints as the tinker SDK's RestClient reads them
(`list_training_runs`, `get_training_run`, `list_checkpoints`, `list_user_checkpoints`,
`get_weights_info_by_tinker_path`): a training run is a training client (its model id), a
checkpoint one of its `save_state` (`training`) or `save_weights_for_sampler` (`sampler`)
paths. Everything is filtered by organization, so another's run is a not-found."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest
from core.persistence.tinker_models import TinkerCheckpoint, TinkerModel, TinkerSession
from core.tinker.paths import parse_path
from core.tinker.service import get_checkpoint, get_model

TYPES = {"weights": "training", "sampler_weights": "sampler"}


def page(limit: Any, offset: Any, most: int) -> tuple[int, int]:
    """(limit, offset) from query strings, or a 400 naming the parameter."""
    try:
        lim, off = int(limit), int(offset)
    except (TypeError, ValueError):
        raise InvalidRequest("limit and offset must be integers", param="limit") from None
    if not 1 <= lim <= most:
        raise InvalidRequest(f"limit must be from 1 to {most}", param="limit")
    if off < 0:
        raise InvalidRequest("offset must be >= 0", param="offset")
    return lim, off


def checkpoint(row: TinkerCheckpoint) -> dict[str, Any]:
    _, kind, name = parse_path(row.path)
    return {
        "checkpoint_id": f"{kind}/{name}",
        "checkpoint_type": TYPES[kind],
        "time": row.created_at.isoformat(),
        "tinker_path": row.path,
        "size_bytes": row.bytes,
        "public": False,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


def _latest(db: Session, model_id: str, kind: str) -> dict[str, Any] | None:
    row = db.scalar(
        select(TinkerCheckpoint)
        .where(TinkerCheckpoint.model_id == model_id, TinkerCheckpoint.kind == kind)
        .order_by(TinkerCheckpoint.created_at.desc())
        .limit(1)
    )
    return checkpoint(row) if row is not None else None


def training_run(db: Session, model: TinkerModel) -> dict[str, Any]:
    session = db.get(TinkerSession, model.session_id)
    last = max(model.created_at, session.heartbeat_at) if session else None
    metadata = (session.user_metadata if session else None) or {}
    return {
        "training_run_id": model.id,
        "base_model": model.base_model,
        "model_owner": model.organization_id,
        "is_lora": True,
        "corrupted": model.status == "failed",
        "lora_rank": model.lora["rank"],
        "last_request_time": (last or model.created_at).isoformat(),
        "last_checkpoint": _latest(db, model.id, "weights"),
        "last_sampler_checkpoint": _latest(db, model.id, "sampler_weights"),
        "user_metadata": {str(k): str(v) for k, v in metadata.items()},
    }


def list_runs(db: Session, org_id: str, limit: int, offset: int) -> dict[str, Any]:
    where = TinkerModel.organization_id == org_id
    total = db.scalar(select(func.count()).select_from(TinkerModel).where(where))
    rows = db.scalars(
        select(TinkerModel)
        .where(where)
        .order_by(TinkerModel.created_at.desc(), TinkerModel.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return {
        "training_runs": [training_run(db, m) for m in rows],
        "cursor": {"offset": offset, "limit": limit, "total_count": total},
    }


def get_run(db: Session, org_id: str, run_id: str) -> dict[str, Any]:
    return training_run(db, get_model(db, org_id, run_id, param="training_run_id"))


def list_checkpoints(
    db: Session, org_id: str, run_id: str | None, limit: int = 1000, offset: int = 0
) -> dict[str, Any]:
    """Of one run (after checking it is this organization's), or of all its runs."""
    where = [TinkerCheckpoint.organization_id == org_id]
    if run_id is not None:
        get_model(db, org_id, run_id, param="training_run_id")
        where.append(TinkerCheckpoint.model_id == run_id)
    total = db.scalar(select(func.count()).select_from(TinkerCheckpoint).where(*where))
    rows = db.scalars(
        select(TinkerCheckpoint)
        .where(*where)
        .order_by(TinkerCheckpoint.created_at.desc(), TinkerCheckpoint.path)
        .limit(limit)
        .offset(offset)
    ).all()
    return {
        "checkpoints": [checkpoint(r) for r in rows],
        "cursor": {"offset": offset, "limit": limit, "total_count": total},
    }


def weights_info(db: Session, org_id: str, path: str) -> dict[str, Any]:
    row = get_checkpoint(db, org_id, path, param="tinker_path")
    return {
        "base_model": row.base_model,
        "is_lora": True,
        "lora_rank": row.lora["rank"],
        "train_unembed": row.lora.get("train_unembed", True),
        "train_mlp": row.lora.get("train_mlp", True),
        "train_attn": row.lora.get("train_attn", True),
    }
