"""OpenAI's model graders: a judge model reads the sample and scores or labels it.

    {"type": "score_model", "name": "judge", "model": "ft:tiny-llama:acme::abcd1234",
     "input": [{"role": "user", "content": "Rate {{sample.output_text}} from 0 to 1"}],
     "range": [0, 1], "sampling_params": {"temperature": 0, "max_completions_tokens": 64}}
    {"type": "label_model", ..., "labels": ["good", "bad"], "passing_labels": ["good"]}

The judge is any model Lathe serves to the organization (a base model, its own `ft:` models,
or one shared with it), called through the inference service. Its answer is constrained to a
JSON object `{"result": <number within range | one of the labels>}` (response_format
json_schema, as OpenAI grades with structured outputs), so even a small judge answers in a
parsable form (an answer cut off inside its number counts as the digits given). A score is
clamped to `range`; a label scores 1.0 if it is a passing label, else 0.0. Only text content
is supported (`input_image`/`input_audio` parts are refused when the grader is parsed).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.graders.base import (
    MAX_TEMPLATE_LENGTH,
    GraderBase,
    JudgeParseError,
    JudgeUnavailable,
)
from core.graders.templates import render, validate_template

MAX_JUDGE_MESSAGES = 32
DEFAULT_JUDGE_TOKENS = 64
MAX_JUDGE_TOKENS = 4096
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_CUT_NUMBER = re.compile(r'\{"result":\s*(-?\d+(?:\.\d+)?)\d*\.?$')
"""An answer cut off by max_completions_tokens while the judge was still writing digits
(a small greedy judge may write `1.0000…` until it runs out): the digits it gave count."""


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["input_text", "output_text"]
    text: str = Field(max_length=MAX_TEMPLATE_LENGTH)


class JudgeMessage(BaseModel):
    """One message of the judge's prompt; its text may hold templates."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant", "system", "developer"]
    content: str | TextPart | list[str | TextPart] = Field(
        description="Text, an input_text/output_text part, or a list of them."
    )
    type: Literal["message"] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        parts = value if isinstance(value, list) else [value]
        if len(parts) > MAX_JUDGE_MESSAGES:
            raise ValueError(f"at most {MAX_JUDGE_MESSAGES} content parts")
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(part, dict) and kind not in ("input_text", "output_text"):
                raise ValueError(
                    f"content part type {kind!r} is not supported: Lathe's judges read text "
                    "(input_text, output_text)"
                )
        return value

    def texts(self) -> list[str]:
        parts = self.content if isinstance(self.content, list) else [self.content]
        return [p if isinstance(p, str) else p.text for p in parts]

    @model_validator(mode="after")
    def _templates(self) -> JudgeMessage:
        for text in self.texts():
            validate_template(text)
        return self

    def rendered(self, sample_text: str, item: dict) -> dict[str, str]:
        text = "".join(render(t, sample_text, item) for t in self.texts())
        return {"role": self.role, "content": text}


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_completions_tokens: int | None = Field(None, ge=1, le=MAX_JUDGE_TOKENS)
    reasoning_effort: str | None = Field(
        None, description="Accepted; ignored (reported): open models have no such setting."
    )
    seed: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)


class _ModelGrader(GraderBase):
    model: str = Field(max_length=512, description="The judge: any model Lathe serves you.")
    input: list[JudgeMessage] = Field(min_length=1, max_length=MAX_JUDGE_MESSAGES)

    def templates(self) -> list[str]:
        return [t for m in self.input for t in m.texts()]

    def ignored(self) -> list[str]:
        """Fields given a value the judge cannot honour (reported, never silently dropped)."""
        return []

    def _ask(self, sample_text: str, item: dict, schema: dict, params: SamplingParams) -> Any:
        """The judge's `result` for this sample, checked to be present."""
        tools = self.tools()
        if tools.judge is None:
            raise JudgeUnavailable("no judge is available to this grader")
        body: dict[str, Any] = {  # as api.routes.chat hands the service a request
            "model": self.model,
            "n": 1,
            "stream": False,
            "top_p": 1.0 if params.top_p is None else params.top_p,
            "messages": [m.rendered(sample_text, item) for m in self.input],
            "max_tokens": params.max_completions_tokens or DEFAULT_JUDGE_TOKENS,
            "temperature": 0.0 if params.temperature is None else params.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "grade", "schema": schema, "strict": True},
            },
        }
        if params.seed is not None:
            body["seed"] = params.seed
        answer = tools.judge.chat(self.model, body)
        tools.add_usage(self.model, answer.get("usage"))
        try:
            content = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise JudgeParseError(f"the judge {self.model} gave no message") from None
        try:
            return json.loads(content)["result"]
        except (ValueError, KeyError, TypeError):
            if cut := _CUT_NUMBER.match(content):  # max tokens ran out inside the number
                return float(cut.group(1))
            raise JudgeParseError(
                f'the judge {self.model} answered {content[:200]!r}, not {{"result": ...}}'
            ) from None


class ScoreModelGrader(_ModelGrader):
    """The judge's numeric score, clamped to `range` (default [0, 1])."""

    type: Literal["score_model"] = "score_model"
    range: list[float] | None = Field(None, min_length=2, max_length=2)
    sampling_params: SamplingParams | None = None

    @model_validator(mode="after")
    def _range(self) -> ScoreModelGrader:
        low, high = self.bounds()
        if not low < high:
            raise ValueError("range must be [low, high] with low < high")
        return self

    def bounds(self) -> tuple[float, float]:
        return (self.range[0], self.range[1]) if self.range else (0.0, 1.0)

    def ignored(self) -> list[str]:
        params = self.sampling_params
        return ["sampling_params.reasoning_effort"] if params and params.reasoning_effort else []

    def score(self, sample_text: str, item: dict) -> float:
        low, high = self.bounds()
        number = {"type": "number", "minimum": low, "maximum": high}  # also keeps it short
        schema = {
            "type": "object",
            "properties": {"result": number},
            "required": ["result"],
            "additionalProperties": False,
        }
        result = self._ask(sample_text, item, schema, self.sampling_params or SamplingParams())
        if isinstance(result, str) and (found := _NUMBER.search(result)):
            result = float(found.group())
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise JudgeParseError(f"the judge {self.model} gave {result!r}, not a number")
        return min(high, max(low, float(result)))


class LabelModelGrader(_ModelGrader):
    """1.0 if the judge's label is one of `passing_labels`, else 0.0."""

    type: Literal["label_model"] = "label_model"
    labels: list[str] = Field(min_length=1, max_length=64)
    passing_labels: list[str] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _subset(self) -> LabelModelGrader:
        extra = set(self.passing_labels) - set(self.labels)
        if extra:
            raise ValueError(f"passing_labels {sorted(extra)} are not among labels")
        return self

    def score(self, sample_text: str, item: dict) -> float:
        schema = {
            "type": "object",
            "properties": {"result": {"type": "string", "enum": list(self.labels)}},
            "required": ["result"],
            "additionalProperties": False,
        }
        label = self._ask(sample_text, item, schema, SamplingParams())
        if label not in self.labels:
            raise JudgeParseError(f"the judge {self.model} gave {label!r}, not one of labels")
        return 1.0 if label in self.passing_labels else 0.0
