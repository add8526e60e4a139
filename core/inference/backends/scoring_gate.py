"""Requests that score their prompt run alone on a vLLM server.

vLLM's CPU engine (0.32, `--enable-lora`) computes a prompt's logprobs through the LoRA logits
processor with one LoRA index per request in the batch, against one row per prompt token:
whenever a request asking for prompt logprobs (completions with `echo` and `logprobs`) shares
a batch with any other request, the shapes disagree, an einsum raises, and the engine dies for
every model on that base. Its scheduler batches whatever is in flight, so separate requests
(two scorings, or a scoring beside a chat) reach that batch as surely as one request with two
prompts. The gate keeps them apart: a scoring request waits until the server has nothing else
in flight and holds new requests back while it runs; everything else runs side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ScoringGate:
    """A readers-writer gate on one event loop: `shared()` for ordinary requests,
    `alone()` for a scoring one. Waiting scorings go first, so a stream of chats cannot
    starve them."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._running = 0
        self._alone = False
        self._waiting = 0

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._alone and not self._waiting)
            self._running += 1
        try:
            yield
        finally:
            async with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        async with self._changed:
            self._waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._alone and not self._running)
            finally:
                self._waiting -= 1
                self._changed.notify_all()  # if cancelled: the requests it held back go on
            self._alone = True
        try:
            yield
        finally:
            async with self._changed:
                self._alone = False
                self._changed.notify_all()
