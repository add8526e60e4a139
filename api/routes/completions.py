"""`/v1/completions`: OpenAI's legacy text completion, for base and fine-tuned causal LMs.

The prompt is tokenized raw (no chat template), so a fine-tuned model answers a prompt
rendered with its chat template exactly as `/v1/chat/completions` would. Generation itself is
the engine's one path, shared with chat.
"""

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
from core.errors import InvalidRequest
from core.ids import new_id
from core.inference.engine import Generation, GenerationParams, InferenceEngine, now
from core.persistence.models import Model

router = APIRouter(prefix="/v1", tags=["inference"])


class CompletionRequest(SamplingRequest):
    # Token-id prompts are in the schema, as OpenAI's, so that clients reach the clear 400.
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text, or a list of texts (one choice each). Token ids are not supported."
    )
    max_tokens: int = Field(16, ge=1, le=4096)
    echo: bool = False
    suffix: str | None = Field(None, description="Not supported.")
    logprobs: int | None = Field(None, description="Not supported.")
    best_of: int | None = Field(None, description="Only 1 is supported.")

    def prompts(self) -> list[str]:
        """The texts to complete, after refusing what Lathe does not do, naming the field."""
        if self.suffix:
            raise InvalidRequest(
                "suffix is not supported: inserting text needs a fill-in-the-middle model",
                param="suffix",
            )
        if self.logprobs is not None:
            raise InvalidRequest("logprobs is not supported", param="logprobs")
        if self.best_of not in (None, 1):
            raise InvalidRequest("only best_of=1 is supported", param="best_of")
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts:
            raise InvalidRequest("prompt must not be an empty list", param="prompt")
        if not all(isinstance(p, str) for p in prompts):
            raise InvalidRequest(
                "token-id prompts are not supported: send the prompt as text", param="prompt"
            )
        return prompts  # type: ignore[return-value]

    def params(self) -> GenerationParams:
        return self.sampling(self.max_tokens)


class CompletionChoice(BaseModel):
    text: str
    index: int
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


@router.post("/completions", name="createCompletion", response_model=Completion)
async def create_completion(
    body: CompletionRequest, org: OrgDep, session: SessionDep, engine: EngineDep
):
    prompts = body.prompts()
    row = await run_in_threadpool(registry.get_model, session, org.id, body.model)
    await run_in_threadpool(engine.require_task, row, "causal_lm")  # not a classifier
    params = body.params()
    ids = [await run_in_threadpool(engine.text_prompt, row, p) for p in prompts]
    if body.stream:
        return sse_response(_chunks(engine, row, prompts, ids, params, body))
    done = [await run_in_threadpool(engine.generate, row, i, params) for i in ids]
    return Completion(
        id=new_id("cmpl-"),
        created=now(),
        model=body.model,
        usage=Usage.of(*done),
        choices=[
            CompletionChoice(
                text=(prompt if body.echo else "") + g.text, index=i, finish_reason=g.finish_reason
            )
            for i, (prompt, g) in enumerate(zip(prompts, done, strict=True))
        ],
    )


def _chunks(
    engine: InferenceEngine,
    row: Model,
    prompts: list[str],
    ids: list[list[int]],
    params: GenerationParams,
    body: CompletionRequest,
) -> Iterator[dict]:
    """`text_completion` chunks: each prompt's deltas in turn (the prompt first, with `echo`),
    its finish, then the usage of them all when asked."""
    cid, created = new_id("cmpl-"), now()

    def chunk(choices: list[dict], usage: Usage | None = None) -> dict:
        payload: dict[str, Any] = {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": body.model,
            "choices": choices,
        }
        if usage:
            payload["usage"] = usage.model_dump()
        return payload

    def choice(index: int, text: str, finish: str | None = None) -> dict:
        return {"text": text, "index": index, "finish_reason": finish, "logprobs": None}

    done: list[Generation] = []
    for index, (prompt, prompt_ids) in enumerate(zip(prompts, ids, strict=True)):
        if body.echo:
            yield chunk([choice(index, prompt)])
        for piece in engine.stream_generate(row, prompt_ids, params):
            if isinstance(piece, Generation):
                done.append(piece)
                yield chunk([choice(index, "", piece.finish_reason)])
            else:
                yield chunk([choice(index, piece)])
    if body.include_usage:
        yield chunk([], Usage.of(*done))
