"""`/v1/chat/completions`: generation from a base or fine-tuned model, OpenAI's shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import EngineDep, OrgDep, SessionDep
from core import registry
from core.errors import InvalidRequest
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


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="Only n=1 is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    def params(self) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        if stop and len(stop) > 4:
            raise InvalidRequest("at most 4 stop sequences are allowed", param="stop")
        return GenerationParams(
            max_tokens=self.max_completion_tokens or self.max_tokens or 256,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stop or None,
            seed=self.seed,
        )

    def chat(self) -> list[dict[str, str]]:
        role = {"developer": "system"}
        return [{"role": role.get(m.role, m.role), "content": m.text()} for m in self.messages]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


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


def _usage(g: Generation) -> Usage:
    return Usage(
        prompt_tokens=g.prompt_tokens,
        completion_tokens=g.completion_tokens,
        total_tokens=g.prompt_tokens + g.completion_tokens,
    )


@router.post("/chat/completions", name="createChatCompletion", response_model=ChatCompletion)
async def create_chat_completion(
    body: ChatRequest, org: OrgDep, session: SessionDep, engine: EngineDep
):
    row = await run_in_threadpool(registry.get_model, session, org.id, body.model)
    await run_in_threadpool(engine.require_task, row, "causal_lm")  # not a classifier
    params = body.params()
    if body.stream:
        chunks = _sse(engine.stream_chat(row, body.chat(), params), body)
        return StreamingResponse(chunks, media_type="text/event-stream")
    g = await run_in_threadpool(engine.chat, row, body.chat(), params)
    return ChatCompletion(
        id=new_id("chatcmpl-"),
        created=now(),
        model=body.model,
        usage=_usage(g),
        choices=[Choice(message=ChoiceMessage(content=g.text), finish_reason=g.finish_reason)],
    )


def _sse(pieces: Iterator[str | Generation], body: ChatRequest) -> Iterator[str]:
    """Server-sent events; a sync iterator, which Starlette runs in its thread pool."""
    cid, created = new_id("chatcmpl-"), now()

    def chunk(delta: dict, finish: str | None = None, usage: Usage | None = None) -> str:
        payload = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage:
            payload["usage"] = usage.model_dump()
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces:
        if isinstance(piece, Generation):
            yield chunk({}, piece.finish_reason)
            if body.stream_options and body.stream_options.include_usage:
                yield chunk({}, usage=_usage(piece))
        else:
            yield chunk({"content": piece})
    yield "data: [DONE]\n\n"
