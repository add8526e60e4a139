"""What one generation asks for and what it gives back, shared by every backend.

These are plain dataclasses (no torch): the API validates OpenAI's fields into them, the
in-process engine runs them, and the vLLM backend passes OpenAI's own fields through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] | None = None
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: dict[int, float] | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: Grammar | None = None
    prompt_logprobs: int | None = None
    """Score the prompt too: each prompt token's logprob and this many alternatives (None:
    not scored). `/v1/completions` with `echo` + `logprobs` asks for it."""

    @property
    def needs_decode_loop(self) -> bool:
        """True when a field only Lathe's own decode loop honours (not `model.generate`)."""
        return bool(
            self.frequency_penalty
            or self.presence_penalty
            or self.logit_bias
            or self.logprobs
            or self.grammar
            or self.prompt_logprobs is not None
            or self.max_tokens == 0
        )


@dataclass(frozen=True)
class Grammar:
    """Constrained decoding: `json_schema` (a JSON Schema dict) or any JSON object (None)."""

    json_schema: dict[str, Any] | None = None


@dataclass
class TokenLogprob:
    token: str
    logprob: float | None  # None: a prompt's first token (nothing before it to predict it)
    bytes: list[int]
    top_logprobs: list[tuple[str, float, list[int]]] = field(default_factory=list)


@dataclass
class Generation:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[TokenLogprob] | None = None
    prompt_logprobs: list[TokenLogprob] | None = None


@dataclass
class Delta:
    """A streamed piece of one generation: text, with the logprobs of its tokens if asked."""

    text: str
    logprobs: list[TokenLogprob] | None = None
