"""Which models exist: base models (from settings) and an organization's fine-tuned ones."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.persistence.models import Model
from core.settings import Settings


def sync_base_models(session: Session, settings: Settings) -> None:
    """Make the `models` table list exactly the configured base models."""
    configured = set(settings.base_models)
    existing = {m.id: m for m in session.scalars(select(Model).where(Model.kind == "base"))}
    for name in configured - existing.keys():
        session.add(Model(id=name, kind="base", base_model=name, organization_id=None))
    for name in existing.keys() - configured:
        session.delete(existing[name])


def visible_models(session: Session, org_id: str) -> list[Model]:
    """What `GET /v1/models` lists, as OpenAI's does: base models and the organization's
    fine-tuned models, not their checkpoints (`ft:…:ckpt-step-N` stay retrievable and
    servable by id, and are listed per job under /fine_tuning/jobs/{id}/checkpoints)."""
    return list(
        session.scalars(
            select(Model)
            .where(or_(Model.organization_id.is_(None), Model.organization_id == org_id))
            .where(Model.kind != "checkpoint")
            .order_by(Model.kind, Model.created_at)
        )
    )


def get_model(session: Session, org_id: str, model_id: str, param: str = "model") -> Model:
    """A base model or one of this organization's; another org's model is a plain 404."""
    model = session.get(Model, model_id)
    if model is None or model.organization_id not in (None, org_id):
        raise NotFound(
            f"The model '{model_id}' does not exist. {_existing(session, org_id, model_id)}",
            param=param,
            code="model_not_found",
        )
    return model


def _existing(session: Session, org_id: str, model_id: str) -> str:
    """A sentence naming the models that do exist: the base models, and the organization's
    models nearest to the name given (a typo), so a first try says what to ask for."""
    import difflib

    bases = sorted(
        session.scalars(
            select(Model.id).where(Model.kind == "base", Model.organization_id.is_(None))
        )
    )
    text = f"Base models: {', '.join(bases)}." if bases else "No base models are configured."
    own = session.scalars(
        select(Model.id)
        .where(Model.organization_id == org_id)
        .order_by(Model.created_at.desc())
        .limit(1000)
    ).all()
    near = difflib.get_close_matches(model_id, [*bases, *own], n=3, cutoff=0.6)
    if near:
        text += f" Did you mean {', '.join(repr(n) for n in near)}?"
    return text + " GET /v1/models lists every model you can use."


def get_usable_model(session: Session, org_id: str, model_id: str, param: str = "model") -> Model:
    """A model the organization may serve or fine-tune from: what get_model finds, or another
    organization's model shared with it (core.permissions); else the same plain 404."""
    model = session.get(Model, model_id)
    if model is not None and model.organization_id not in (None, org_id):
        from core.permissions import shared_with

        if shared_with(session, org_id, model_id):
            return model
    return get_model(session, org_id, model_id, param)


def local_base_model_path(settings: Settings, name: str) -> Path | None:
    """The base model's directory when its weights are already on this machine, else None
    (never builds or downloads: the API checks what it can without fetching a model)."""
    source = settings.base_models.get(name)
    if source is None:
        return None
    if source.source == "path":
        return Path(source.path)  # type: ignore[arg-type]
    if source.source == "builtin":
        path = settings.resolved_model_cache_dir / name
        return path if (path / "lathe_builtin.json").exists() else None
    return None


def base_model_path(settings: Settings, name: str) -> Path:
    """Local directory of a base model's weights, fetching or building it on first use."""
    source = settings.base_models.get(name)
    if source is None:
        raise NotFound(f"unknown base model {name!r}", param="model", code="model_not_found")
    if source.source == "path":
        return Path(source.path)  # type: ignore[arg-type]
    cache = settings.resolved_model_cache_dir
    if source.source == "builtin":
        from core.tiny_model import BUILTINS, ensure_tiny_llama
        from core.tiny_pretrain import PRETRAINED, ensure_pretrained

        if name == PRETRAINED:
            return ensure_pretrained(cache / name)

        return ensure_tiny_llama(cache / name, builder=name if name in BUILTINS else "tiny-llama")
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(source.hub_id, revision=source.revision, cache_dir=str(cache / "hub"))
    )
