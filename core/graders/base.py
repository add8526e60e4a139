"""What every grader spec shares: its name, templated fields, and the tools it is bound to.

Most graders score with nothing but the sample and the row. Three need something from the
process that grades: `score_model`/`label_model` a judge (a model Lathe serves, called through
the inference service), text_similarity's `cosine` an encoder, `python` the sandbox settings.
A parsed grader is bound to those once (`core.graders.grade.bind`) before it scores, so the
API and a training worker grade through the same objects with their own tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from core.graders.templates import GraderError, item_keys, validate_template

MAX_TEMPLATE_LENGTH = 100_000
"""Characters of a grader's `input` or `reference` template."""


class Judge(Protocol):
    """Calls a model Lathe serves: `chat(model, body)` → an OpenAI chat.completion dict.
    Raises JudgeUnavailable when the model cannot answer (unknown, not shared, service down)."""

    def chat(self, model: str, body: dict[str, Any]) -> dict[str, Any]: ...


class JudgeUnavailable(GraderError):
    """The judge model could not answer: OpenAI's model_grader_server_error."""


class JudgeParseError(GraderError):
    """The judge answered something that is not a score or a label: model_grader_parse_error."""


class PythonGraderError(GraderError):
    """The python grader raised, timed out or printed no number: python_grader_runtime_error."""


@dataclass
class GraderTools:
    """What graders may call beyond the sample and the row; None: that kind is unavailable."""

    judge: Judge | None = None
    settings: Any = None
    usage: dict[str, dict[str, int]] | None = None
    """Filled by model graders: model → token counts (OpenAI's
    model_grader_token_usage_per_model)."""

    def add_usage(self, model: str, usage: dict[str, Any] | None) -> None:
        if self.usage is None or not usage:
            return
        entry = self.usage.setdefault(
            model,
            {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached_tokens": 0},
        )
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            entry[key] += int(usage.get(key) or 0)


class GraderBase(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(max_length=256, description="The grader's name (shown in metrics).")
    _tools: GraderTools | None = PrivateAttr(None)

    def item_keys(self) -> set[str]:
        """Dataset keys (dotted paths) this grader reads, to check a dataset up front."""
        keys: set[str] = set()
        for template in self.templates():
            keys |= item_keys(template)
        return keys

    def templates(self) -> list[str]:
        """Every template this grader renders (checked against each row up front)."""
        values = (getattr(self, f, None) for f in ("input", "reference"))
        return [v for v in values if isinstance(v, str)]

    def tools(self) -> GraderTools:
        if self._tools is None:
            raise GraderError(f"grader '{self.name}' was not bound to its tools")
        return self._tools


class TemplatedInput(GraderBase):
    input: str = Field(
        max_length=MAX_TEMPLATE_LENGTH, description="Template, e.g. {{sample.output_text}}."
    )

    @field_validator("input", "reference", check_fields=False)
    @classmethod
    def _templates(cls, value: str) -> str:
        return validate_template(value)
