"""vLLM's tokenizer endpoints for any Lathe model: `POST /v1/tokenize`, `POST /v1/detokenize`,
`GET /v1/tokenizer_info?model=…` (and the same under a model's own root, see
api.routes.model_root, where `model` may be left out). Tokenizers live in the inference
service; this authenticates, resolves the model and relays its answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, OrgDep, SessionDep
from core import registry
from core.errors import InvalidRequest
from core.inference.wire.chat import ChatMessage

router = APIRouter(prefix="/v1", tags=["tokenizer"])


class TokenizeRequest(BaseModel):
    """Either `prompt` (text) or `messages` (rendered with the model's chat template)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    add_special_tokens: bool | None = Field(
        None, description="Default: true for a prompt, false for messages (as vLLM's)."
    )
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    return_token_strs: bool = False

    def wire(self) -> dict[str, Any]:
        if (self.prompt is None) == (self.messages is None):
            raise InvalidRequest("send exactly one of prompt and messages", param="prompt")
        if self.continue_final_message and self.add_generation_prompt and self.messages:
            raise InvalidRequest(
                "continue_final_message cannot be combined with add_generation_prompt",
                param="continue_final_message",
            )
        body = self.model_dump(exclude={"model", "messages"}, exclude_none=True)
        body.setdefault("add_special_tokens", self.prompt is not None)
        if self.messages is not None:  # as /v1/chat/completions hands them to the template
            body["messages"] = [m.rendered() for m in self.messages]
        return body


class TokenizeResponse(BaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    tokens: list[int] = Field(max_length=1_000_000)


class DetokenizeResponse(BaseModel):
    prompt: str


def required(model: str | None) -> str:
    if not model:
        raise InvalidRequest(
            "model is required here (or use the model's own root, /v1/models/{model})",
            param="model",
        )
    return model


async def relay_tokenizer(op: str, model: str, body: dict, org, session, engine) -> dict:
    row = await run_in_threadpool(registry.get_usable_model, session, org.id, model)
    return (await engine.call(op, row, body)).json or {}


@router.post("/tokenize", name="tokenize", response_model=TokenizeResponse)
async def tokenize(body: TokenizeRequest, org: OrgDep, session: SessionDep, engine: EngineDep):
    return await relay_tokenizer(
        "tokenize", required(body.model), body.wire(), org, session, engine
    )


@router.post("/detokenize", name="detokenize", response_model=DetokenizeResponse)
async def detokenize(body: DetokenizeRequest, org: OrgDep, session: SessionDep, engine: EngineDep):
    return await relay_tokenizer(
        "detokenize", required(body.model), {"tokens": body.tokens}, org, session, engine
    )


@router.get("/tokenizer_info", name="tokenizerInfo")
async def tokenizer_info(
    org: OrgDep, session: SessionDep, engine: EngineDep, model: str | None = None
) -> dict[str, Any]:
    """The tokenizer's configuration (tokenizer_config.json's fields), its class and chat
    template, as vLLM's `/tokenizer_info`."""
    return await relay_tokenizer("tokenizer_info", required(model), {}, org, session, engine)
