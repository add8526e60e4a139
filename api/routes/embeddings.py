"""`POST /v1/embeddings` (the openai SDK's `client.embeddings.create`): vectors from encoder
bases and from causal LMs and their fine-tunes, computed in the inference service (pooling:
core.inference.embeddings)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import EngineDep, OrgDep, SessionDep
from api.sse import relay
from core import registry
from core.inference.wire.embeddings import EmbeddingRequest

router = APIRouter(prefix="/v1", tags=["inference"])


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
