"""`/v1/completions`: OpenAI's legacy text completion, for base and fine-tuned causal LMs.

The prompt is tokenized raw (no chat template), so a fine-tuned model answers a prompt
rendered with its chat template exactly as `/v1/chat/completions` would. Generation runs in
the inference service, as for chat.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import EngineDep, OrgDep, SessionDep, SettingsDep
from api.routes import drift
from api.schemas_inference import SamplingRequest, Usage
from api.sse import relay
from core import registry
from core.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["inference"])


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text, a list of texts, token ids, or a list of token-id lists (n choices "
        "each). Token ids are used as they are: no BOS is added."
    )
    max_tokens: int = Field(16, ge=0, description="0: score the prompt, generate nothing.")
    echo: bool = False
    suffix: str | None = Field(None, description="Not supported.")
    logprobs: int | None = Field(
        None,
        ge=0,
        le=5,
        description="Log probabilities of the chosen tokens and of the `logprobs` likeliest "
        "at each position (legacy shape: tokens, token_logprobs, top_logprobs, text_offset). "
        "With `echo`, the prompt's tokens are scored too (the first one null).",
    )
    best_of: int | None = Field(None, description="Only 1 is supported.")

    def prompts(self) -> list[str | list[int]]:
        """The prompts (texts or token-id lists), after refusing what Lathe does not do,
        naming the field."""
        self.refuse_unknown()
        if self.suffix:
            raise InvalidRequest(
                "suffix is not supported: inserting text needs a fill-in-the-middle model",
                param="suffix",
            )
        if self.best_of not in (None, 1):
            raise InvalidRequest("only best_of=1 is supported", param="best_of")
        if self.max_tokens == 0 and not self.echo:
            raise InvalidRequest(
                "max_tokens 0 generates nothing: set echo (with logprobs) to score the prompt",
                param="max_tokens",
            )
        if self.stream and self.echo and self.logprobs is not None:
            raise InvalidRequest(
                "echo with logprobs is not supported with stream: send it unstreamed",
                param="stream",
            )
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            raise InvalidRequest("prompt must not be an empty list", param="prompt")
        if isinstance(prompt[0], int):
            return [prompt]  # type: ignore[list-item]
        for i, item in enumerate(prompt):
            if isinstance(item, list) and not item:
                raise InvalidRequest(f"prompt[{i}] must not be empty", param=f"prompt[{i}]")
        return prompt  # type: ignore[return-value]

    def body(self, max_stop_length: int) -> dict[str, Any]:
        body = self.sampling_body(max_stop_length)
        body = {**body, "prompt": self.prompts(), "max_tokens": self.max_tokens, "echo": self.echo}
        if self.logprobs is not None:
            body["logprobs"] = self.logprobs
        return body


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
    wire = body.body(settings.inference_max_stop_length)
    row = await run_in_threadpool(registry.get_usable_model, session, org.id, body.model)
    answer = await engine.call("completions", row, wire)
    texts = [p for p in wire["prompt"] if isinstance(p, str)]  # drift samples text only
    return drift.sampled(relay(answer), settings, org.id, row, texts, answer)
