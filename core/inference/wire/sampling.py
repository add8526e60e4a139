"""Wire shapes shared by the generation endpoints (`/v1/chat/completions`, `/v1/completions`):
the sampling fields both take, validated here so every backend gets the same clean request.

Every field OpenAI defines is either honoured by the backends or refused with a 400 naming it;
fields Lathe does not know are refused too (`extra="allow"` + `refuse_unknown`), never
silently dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import InvalidRequest

SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
IGNORABLE = {"user", "store", "metadata", "service_tier"}
"""Fields that do not change the answer: accepted, not used."""


class StreamOptions(BaseModel):
    include_usage: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class SamplingRequest(BaseModel):
    """Fields every generation request shares; each endpoint adds its prompt and budget."""

    model_config = ConfigDict(extra="allow")

    model: str
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX, description="A 64-bit integer.")
    n: int = Field(1, ge=1, le=16, description="Choices per prompt, at most 16.")
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    logit_bias: dict[str, float] | None = Field(
        None, description="Token id (as a string) → bias in [-100, 100], added to its logit."
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.lstrip("-").isdigit():
                raise ValueError(f"keys are token ids, not {key!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"the bias of token {key} must be in [-100, 100]")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def refuse_unknown(self, supported_elsewhere: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """A 400 naming the first field Lathe does not honour (set to anything but null)."""
        for name, value in (self.model_extra or {}).items():
            if value is not None and name not in IGNORABLE | supported_elsewhere:
                raise InvalidRequest(f"{name} is not supported", param=name)
        if self.stream_options is not None and not self.stream:
            raise InvalidRequest(
                "stream_options is only allowed with stream", param="stream_options"
            )

    def stops(self, max_length: int) -> list[str] | None:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        if stop and len(stop) > 4:
            raise InvalidRequest("at most 4 stop sequences are allowed", param="stop")
        for s in stop or []:
            if not s:
                raise InvalidRequest("stop sequences must not be empty", param="stop")
            if len(s) > max_length:
                raise InvalidRequest(
                    f"stop sequences may be at most {max_length} characters", param="stop"
                )
        return stop or None

    def sampling_body(self, max_stop_length: int) -> dict[str, Any]:
        """The shared fields as the backends take them."""
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "n": self.n,
            "stream": self.stream,
        }
        optional = {
            "stop": self.stops(max_stop_length),
            "seed": self.seed,
            "frequency_penalty": self.frequency_penalty or None,
            "presence_penalty": self.presence_penalty or None,
            "logit_bias": self.logit_bias or None,
            "stream_options": {"include_usage": True} if self.include_usage else None,
        }
        return {**body, **{k: v for k, v in optional.items() if v is not None}}
