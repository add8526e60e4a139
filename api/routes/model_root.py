"""A model's own root, `/v1/models/{model}`: vLLM's single-model view of any Lathe model
(bases, `ft:` models, checkpoints), so a tool written for one vLLM server works against it
unchanged — e.g. lm-eval's `local-completions` with `tokenizer_backend=remote` and
`base_url=…/v1/models/{model}/v1/completions` (its remote tokenizer strips `/v1/completions`
and calls `/tokenize` beside it).

Under it: `/v1/completions`, `/v1/chat/completions`, `/v1/models`, `/tokenize`, `/detokenize`,
`/tokenizer_info`. A request may leave `model` out (the root names it); one that names
another model is refused, as a vLLM server refuses a model it does not serve. The same
bearer key authenticates (it is under /v1).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import EngineDep, OrgDep, SessionDep, SettingsDep
from api.routes import chat, completions, tokenizer
from api.schemas import ListResponse, ModelObject
from core import registry
from core.errors import InvalidRequest

router = APIRouter(prefix="/v1/models/{model:path}", tags=["model root"])


class RootCompletionRequest(completions.CompletionRequest):
    model: str | None = None  # type: ignore[assignment]


class RootChatRequest(chat.ChatRequest):
    model: str | None = None  # type: ignore[assignment]


def served(root: str, named: str | None) -> str:
    if named not in (None, root):
        raise InvalidRequest(f"this root serves {root}; model names {named}", param="model")
    return root


@router.post("/v1/completions", name="modelRootCompletion")
async def root_completion(
    model: str,
    body: RootCompletionRequest,
    org: OrgDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
):
    body.model = served(model, body.model)
    return await completions.create_completion(body, org, session, engine, settings)  # type: ignore[arg-type]


@router.post("/v1/chat/completions", name="modelRootChatCompletion")
async def root_chat(
    model: str,
    body: RootChatRequest,
    org: OrgDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
):
    body.model = served(model, body.model)
    return await chat.create_chat_completion(body, org, session, engine, settings)  # type: ignore[arg-type]


@router.get("/v1/models", name="modelRootModels", response_model=ListResponse[ModelObject])
def root_models(model: str, org: OrgDep, session: SessionDep) -> ListResponse[ModelObject]:
    return ListResponse.of(
        [ModelObject.from_row(registry.get_usable_model(session, org.id, model))]
    )


@router.post("/tokenize", name="modelRootTokenize", response_model=tokenizer.TokenizeResponse)
async def root_tokenize(
    model: str,
    body: tokenizer.TokenizeRequest,
    org: OrgDep,
    session: SessionDep,
    engine: EngineDep,
):
    name = served(model, body.model)
    return await tokenizer.relay_tokenizer("tokenize", name, body.wire(), org, session, engine)


@router.post("/detokenize", name="modelRootDetokenize", response_model=tokenizer.DetokenizeResponse)
async def root_detokenize(
    model: str,
    body: tokenizer.DetokenizeRequest,
    org: OrgDep,
    session: SessionDep,
    engine: EngineDep,
):
    name = served(model, body.model)
    wire = {"tokens": body.tokens}
    return await tokenizer.relay_tokenizer("detokenize", name, wire, org, session, engine)


@router.get("/tokenizer_info", name="modelRootTokenizerInfo")
async def root_tokenizer_info(
    model: str, org: OrgDep, session: SessionDep, engine: EngineDep
) -> dict[str, Any]:
    return await tokenizer.relay_tokenizer("tokenizer_info", model, {}, org, session, engine)
