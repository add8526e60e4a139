"""`/v1/embeddings` request shape (api.routes.embeddings serves it; worker.batches validates
batch lines with it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidRequest

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
