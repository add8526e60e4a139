"""What the inference service asks of a backend: OpenAI-shaped chat and text completions
for one stored model. `body` is the API's validated request (content parts flattened, the
token budget resolved into `max_tokens`); the answer is OpenAI's JSON, or its chunks when
`body["stream"]`. A backend refuses what it cannot honour with InvalidRequest naming the
field, never by ignoring it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from core.model_store import StoredModel

Answer = dict | AsyncIterator[dict]


class Backend(Protocol):
    name: str

    def serves(self, model: StoredModel) -> bool:
        """Whether this backend can serve `model` now."""
        ...

    async def chat(self, model: StoredModel, body: dict) -> Answer: ...

    async def completion(self, model: StoredModel, body: dict) -> Answer: ...
