"""`/v1/classifications`: label texts with a Lathe classification model.

    POST /v1/classifications {"model": "ft:minilm:...", "input": ["text", ...]}
    → {"object": "list", "data": [{"object": "classification", "index": 0, "label": "sports",
       "probabilities": {"cooking": 0.02, "sports": 0.98}}, ...], "model": ..., "usage": ...}

Shaped like /v1/rewards and OpenAI's embeddings endpoint: a list of inputs in, one object per
input out. The model is one trained with `method.type: "classification"`.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import EngineDep, OrgDep, SessionDep
from core import registry
from core.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["inference"])


class ClassificationRequest(BaseModel):
    model: str = Field(description="A model fine-tuned with method.type 'classification'.")
    input: str | list[str] = Field(description="A text or a list of texts (at most 2048).")
    user: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class ClassificationObject(BaseModel):
    object: Literal["classification"] = "classification"
    index: int
    label: str = Field(description="The most probable label.")
    probabilities: dict[str, float] = Field(description="Every label's probability.")


class ClassificationUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class ClassificationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ClassificationObject]
    model: str
    usage: ClassificationUsage


@router.post("/classifications", name="createClassification", response_model=ClassificationList)
async def create_classification(
    body: ClassificationRequest, org: OrgDep, session: SessionDep, engine: EngineDep
) -> ClassificationList:
    texts = body.texts()
    if not 1 <= len(texts) <= 2048:
        raise InvalidRequest("input must hold 1 to 2048 texts", param="input")
    row = await run_in_threadpool(registry.get_model, session, org.id, body.model)
    answer = (await engine.call("classifications", row, {"input": texts})).json or {}
    results, tokens = answer["results"], answer["tokens"]
    return ClassificationList(
        data=[
            ClassificationObject(index=i, label=r["label"], probabilities=r["probabilities"])
            for i, r in enumerate(results)
        ],
        model=body.model,
        usage=ClassificationUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
