"""`/v1/rewards`: score conversations or texts with a Lathe reward model.

    POST /v1/rewards {"model": "ft:...", "input": [[{"role": "user", ...}, ...], "text", ...]}
    → {"object": "list", "data": [{"object": "reward", "index": 0, "score": 1.7}, ...], ...}

Shaped like OpenAI's embeddings endpoint (a list of inputs in, one object per input out). A
conversation is scored rendered with the model's chat template, as the reward model was
trained; a string is scored as it is.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import EngineDep, OrgDep, SessionDep
from core import registry
from core.errors import InvalidRequest
from core.inference.wire.chat import ChatMessage

router = APIRouter(prefix="/v1", tags=["inference"])


class Conversation(BaseModel):
    messages: list[ChatMessage] = Field(min_length=1)


Messages = list[ChatMessage]


class RewardRequest(BaseModel):
    model: str = Field(description="A reward model (a model whose task is reward_model).")
    input: list[Conversation | Messages | str] = Field(
        min_length=1,
        max_length=2048,
        description="What to score: conversations (a message list, or {messages: [...]}, "
        "usually a prompt and the reply to judge) or plain strings.",
    )
    user: str | None = None


class RewardObject(BaseModel):
    object: Literal["reward"] = "reward"
    index: int
    score: float = Field(description="The reward model's scalar: higher is better.")


class RewardUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RewardList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RewardObject]
    model: str
    usage: RewardUsage


def _item(value: Conversation | Messages | str) -> str | list[dict[str, str]]:
    if isinstance(value, str):
        return value
    messages = value.messages if isinstance(value, Conversation) else value
    if not messages:
        raise InvalidRequest("a conversation needs at least one message", param="input")
    return [m.rendered() for m in messages]


@router.post("/rewards", name="createReward", response_model=RewardList)
async def create_reward(
    body: RewardRequest, org: OrgDep, session: SessionDep, engine: EngineDep
) -> RewardList:
    items = [_item(value) for value in body.input]
    row = await run_in_threadpool(registry.get_model, session, org.id, body.model)
    answer = (await engine.call("rewards", row, {"input": items})).json or {}
    scores, tokens = answer["scores"], answer["tokens"]
    return RewardList(
        data=[RewardObject(index=i, score=s) for i, s in enumerate(scores)],
        model=body.model,
        usage=RewardUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
