"""Wire shapes shared by the generation endpoints (`/v1/chat/completions`, `/v1/completions`):
the sampling fields both requests take, `stream_options` and `usage`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.errors import InvalidRequest
from core.inference.engine import Generation, GenerationParams


class StreamOptions(BaseModel):
    include_usage: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, *generations: Generation) -> Usage:
        """Summed over the generations of one request (a completion may have several prompts)."""
        prompt = sum(g.prompt_tokens for g in generations)
        completion = sum(g.completion_tokens for g in generations)
        return cls(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )


class SamplingRequest(BaseModel):
    """Fields every generation request shares; each endpoint adds its prompt and `max_tokens`."""

    model: str
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="Only n=1 is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def sampling(self, max_tokens: int) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        if stop and len(stop) > 4:
            raise InvalidRequest("at most 4 stop sequences are allowed", param="stop")
        return GenerationParams(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stop or None,
            seed=self.seed,
        )
