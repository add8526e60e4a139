"""`POST /v1/embeddings` (the openai SDK's `client.embeddings.create`): vectors from encoder
bases and from causal LMs and their fine-tunes, computed in the inference service (pooling:
core.inference.embeddings)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, OrgDep, SessionDep
from api.sse import relay
from core import registry
from core.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["inference"])

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text, a list of texts, token ids or a list of token-id lists (at most "
        f"{MAX_INPUTS} inputs)."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(
        None, ge=1, description="Keep the first N components, normalised again."
    )
    user: str | None = None

    def inputs(self) -> list[str | list[int]]:
        value = self.input
        if isinstance(value, str):
            items: list = [value]
        elif value and isinstance(value[0], int):
            items = [value]
        else:
            items = list(value)
        if not items:
            raise InvalidRequest("input must not be empty", param="input")
        if len(items) > MAX_INPUTS:
            raise InvalidRequest(f"at most {MAX_INPUTS} inputs per request", param="input")
        for i, item in enumerate(items):
            if not item:
                where = "input" if len(items) == 1 else f"input[{i}]"
                raise InvalidRequest(f"{where} must not be empty", param=where)
        return items


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: dict[str, Any]


@router.post("/embeddings", name="createEmbedding", response_model=EmbeddingList)
async def create_embedding(
    body: EmbeddingRequest, org: OrgDep, session: SessionDep, engine: EngineDep
):
    wire = {
        "model": body.model,
        "input": body.inputs(),
        "encoding_format": body.encoding_format,
        "dimensions": body.dimensions,
    }
    row = await run_in_threadpool(registry.get_usable_model, session, org.id, body.model)
    return relay(await engine.call("embeddings", row, wire))
