"""`/v1/completions`: OpenAI's legacy text completion, for base and fine-tuned causal LMs.

The prompt is tokenized raw (no chat template), so a fine-tuned model answers a prompt
rendered with its chat template exactly as `/v1/chat/completions` would. Generation runs in
the inference service, as for chat.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import EngineDep, OrgDep, SessionDep, SettingsDep
from api.routes import drift
from api.schemas_inference import Usage
from api.sse import relay
from core import registry
from core.inference.wire.completions import CompletionRequest

router = APIRouter(prefix="/v1", tags=["inference"])


class CompletionChoice(BaseModel):
    text: str
    index: int
    finish_reason: Literal["stop", "length"]
    logprobs: dict[str, Any] | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


@router.post("/completions", name="createCompletion", response_model=Completion)
async def create_completion(
    body: CompletionRequest,
    org: OrgDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
):
    wire = body.body(settings.inference.max_stop_length)
    row = await run_in_threadpool(registry.get_usable_model, session, org.id, body.model)
    answer = await engine.call("completions", row, wire)
    texts = [p for p in wire["prompt"] if isinstance(p, str)]  # drift samples text only
    return drift.sampled(relay(answer), settings, org.id, row, texts, answer)
