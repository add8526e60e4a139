"""`/v1/chat/completions`: generation from a base or fine-tuned model, OpenAI's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import EngineDep, OrgDep, SessionDep
from api.schemas_inference import SamplingRequest, Usage
from api.sse import sse_response
from core import registry
from core.ids import new_id
from core.inference.engine import Generation, GenerationParams, now

router = APIRouter(prefix="/v1", tags=["inference"])


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)

    def params(self) -> GenerationParams:
        return self.sampling(self.max_completion_tokens or self.max_tokens or 256)

    def chat(self) -> list[dict[str, str]]:
        role = {"developer": "system"}
        return [{"role": role.get(m.role, m.role), "content": m.text()} for m in self.messages]


class ChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChoiceMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


@router.post("/chat/completions", name="createChatCompletion", response_model=ChatCompletion)
async def create_chat_completion(
    body: ChatRequest, org: OrgDep, session: SessionDep, engine: EngineDep
):
    row = await run_in_threadpool(registry.get_model, session, org.id, body.model)
    await run_in_threadpool(engine.require_task, row, "causal_lm")  # not a classifier
    params = body.params()
    ids = await run_in_threadpool(engine.chat_prompt, row, body.chat())
    if body.stream:
        return sse_response(_chunks(engine.stream_generate(row, ids, params), body))
    g = await run_in_threadpool(engine.generate, row, ids, params)
    return ChatCompletion(
        id=new_id("chatcmpl-"),
        created=now(),
        model=body.model,
        usage=Usage.of(g),
        choices=[Choice(message=ChoiceMessage(content=g.text), finish_reason=g.finish_reason)],
    )


def _chunks(pieces: Iterator[str | Generation], body: ChatRequest) -> Iterator[dict]:
    """`chat.completion.chunk` objects: the role, the text deltas, the finish, the usage."""
    cid, created = new_id("chatcmpl-"), now()

    def chunk(delta: dict, finish: str | None = None, usage: Usage | None = None) -> dict:
        payload: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage:
            payload["usage"] = usage.model_dump()
        return payload

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces:
        if isinstance(piece, Generation):
            yield chunk({}, piece.finish_reason)
            if body.include_usage:
                yield chunk({}, usage=Usage.of(piece))
        else:
            yield chunk({"content": piece})
