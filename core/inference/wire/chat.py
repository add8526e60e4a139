"""`/v1/chat/completions` request shapes (api.routes.chat serves them; worker.batches
validates batch lines with them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from core.errors import InvalidRequest
from core.inference.wire.sampling import SamplingRequest


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="JSON text, as the model wrote it.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[TextPart] | None = Field(
        None, description="Text, or a list of text parts (other part types are refused)."
    )

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        """One clear error per bad part (not one per branch of the union)."""
        if not isinstance(value, list):
            return value
        for i, part in enumerate(value):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text":
                raise ValueError(f"part {i}: only text parts are supported, not {kind!r}")
            if not isinstance(part.get("text"), str):
                raise ValueError(f"part {i}: text must be a string")
        return value

    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""

    def rendered(self) -> dict[str, Any]:
        """The message as chat templates take it (developer → system, parts joined)."""
        out: dict[str, Any] = {"role": {"developer": "system"}.get(self.role, self.role)}
        out["content"] = self.text()
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        if self.name:
            out["name"] = self.name
        return out


class FunctionDef(BaseModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaFormat(BaseModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs json_schema")
        return self


class ChatRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None

    def body(self, max_stop_length: int) -> dict[str, Any]:
        """The request as the backends take it; what no backend honours is a 400 here."""
        self.refuse_unknown()
        if self.top_logprobs and not self.logprobs:
            raise InvalidRequest("top_logprobs needs logprobs: true", param="top_logprobs")
        if self.tool_choice is not None and not self.tools:
            raise InvalidRequest("tool_choice needs tools", param="tool_choice")
        body = self.sampling_body(max_stop_length)
        body["messages"] = [m.rendered() for m in self.messages]
        body["max_tokens"] = self.max_completion_tokens or self.max_tokens
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=self.top_logprobs or 0)
        if self.response_format and self.response_format.type != "text":
            body["response_format"] = self.response_format.model_dump(by_alias=True)
        if self.tools:
            body["tools"] = [t.model_dump(exclude_none=True) for t in self.tools]
            choice = self.tool_choice or "auto"
            body["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump()
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        return {k: v for k, v in body.items() if v is not None}
