"""Request bodies of the Evals API, in the shapes the official `openai` SDK sends.

Unknown fields are refused (400 naming them) rather than ignored; the data sources and
configs OpenAI had that Lathe cannot run (logs, stored completions, responses) are refused
with a 400 naming their `type` (core.evals.checks), never accepted and skipped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.graders.base import MAX_TEMPLATE_LENGTH
from core.graders.templates import validate_template
from core.jobspec.bounds import check_json_depth

MAX_CRITERIA = 32
MAX_TEMPLATE_MESSAGES = 64
MAX_SAMPLE_TOKENS = 4096


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=16, description="Up to 16 string pairs (keys ≤64, values ≤512 chars)."),
]


class CustomDataSourceConfig(_Strict):
    type: Literal["custom"]
    item_schema: dict[str, Any] = Field(description="JSON schema of each row's `item`.")
    include_sample_schema: bool = Field(
        False, description="Runs populate `sample` (a completions data source generates it)."
    )

    @field_validator("item_schema", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return check_json_depth(value)


class EvalCreate(_Strict):
    """`POST /v1/evals`."""

    name: str | None = Field(None, max_length=256)
    metadata: Metadata | None = None
    data_source_config: dict[str, Any] = Field(
        description="{type: custom, item_schema, include_sample_schema}; Lathe stores no "
        "completions logs, so `logs` and `stored_completions` are refused."
    )
    testing_criteria: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_CRITERIA,
        description="Graders (string_check, text_similarity, score_model, label_model, python "
        "where enabled, multi) with an optional pass_threshold.",
    )

    @field_validator("data_source_config", "testing_criteria", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return check_json_depth(value)


class EvalUpdate(_Strict):
    """`POST /v1/evals/{eval_id}`: only the name and metadata change."""

    name: str | None = Field(None, max_length=256)
    metadata: Metadata | None = None


class SourceRow(_Strict):
    item: dict[str, Any]
    sample: dict[str, Any] | None = None


class FileContentSource(_Strict):
    type: Literal["file_content"]
    content: list[SourceRow] = Field(min_length=1)


class FileIdSource(_Strict):
    type: Literal["file_id"]
    id: str = Field(max_length=64)


Source = Annotated[FileContentSource | FileIdSource, Field(discriminator="type")]


class TextContent(_Strict):
    type: Literal["input_text", "output_text"]
    text: str = Field(max_length=MAX_TEMPLATE_LENGTH)


class TemplateMessage(_Strict):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | TextContent | list[TextContent] = Field(
        description="Text (templates over {{item.*}}), or input_text/output_text parts."
    )
    type: Literal["message"] | None = None

    def texts(self) -> list[str]:
        parts = self.content if isinstance(self.content, list) else [self.content]
        return [p if isinstance(p, str) else p.text for p in parts]

    @field_validator("content", mode="after")
    @classmethod
    def _templates(cls, value: Any) -> Any:
        parts = value if isinstance(value, list) else [value]
        for part in parts:
            text = part if isinstance(part, str) else part.text
            if len(text) > MAX_TEMPLATE_LENGTH:
                raise ValueError(f"a template is at most {MAX_TEMPLATE_LENGTH} characters")
            validate_template(text)
        return value


class TemplateInput(_Strict):
    type: Literal["template"]
    template: list[TemplateMessage] = Field(min_length=1, max_length=MAX_TEMPLATE_MESSAGES)


class ItemReferenceInput(_Strict):
    type: Literal["item_reference"]
    item_reference: str = Field(
        max_length=256,
        pattern=r"^item(\.[A-Za-z_][A-Za-z0-9_\-]*)+$",
        description="item.<key>: a list of chat messages in each row.",
    )


InputMessages = Annotated[TemplateInput | ItemReferenceInput, Field(discriminator="type")]


class SamplingParams(_Strict):
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_SAMPLE_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    response_format: dict[str, Any] | None = Field(
        None, description="text, json_object or json_schema, as chat completions take it."
    )
    reasoning_effort: None = Field(
        None, description="Open models have no reasoning effort: any value is refused."
    )

    @field_validator("response_format")
    @classmethod
    def _format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") not in ("text", "json_object", "json_schema"):
            raise ValueError("type must be text, json_object or json_schema")
        return check_json_depth(value)


class CompletionsDataSource(_Strict):
    type: Literal["completions"]
    source: Source
    model: str = Field(max_length=512, description="A model Lathe serves you.")
    input_messages: InputMessages | None = Field(
        None, description="Default: item.input_trajectory is not assumed; required."
    )
    sampling_params: SamplingParams | None = None


class JsonlDataSource(_Strict):
    type: Literal["jsonl"]
    source: Source


DataSource = Annotated[CompletionsDataSource | JsonlDataSource, Field(discriminator="type")]


class RunCreate(_Strict):
    """`POST /v1/evals/{eval_id}/runs`."""

    name: str | None = Field(None, max_length=256)
    metadata: Metadata | None = None
    data_source: dict[str, Any] = Field(
        description="jsonl {source} or completions {source, model, input_messages, "
        "sampling_params}; source is file_content or file_id."
    )

    @field_validator("data_source", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return check_json_depth(value)
