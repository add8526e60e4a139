"""`/v1/completions` request shape (api.routes.completions serves it; worker.batches
validates batch lines with it)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from core.errors import InvalidRequest
from core.inference.wire.sampling import SamplingRequest


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
