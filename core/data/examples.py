"""Normalised training examples: every dataset format is read into one of these.

Methods consume these types only, never raw dataset rows, so a new file format touches the
readers and nothing downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    weight: float | None = None
    """0 or 1 per OpenAI: whether an assistant message is trained on (None: trained)."""
    tool_calls: tuple[dict, ...] | None = None
    """OpenAI `tool_calls` of an assistant message (content may then be empty)."""
    tool_call_id: str | None = None
    """On a tool message: the call it answers."""
    name: str | None = None
    """On a tool message: the function that answered (legacy `function` role messages)."""


@dataclass(frozen=True)
class Conversation:
    """A supervised example: the loss covers assistant turns whose weight is not 0."""

    messages: tuple[Message, ...]
    line: int = 0
    tools: tuple[dict, ...] | None = None
    """OpenAI `tools` (function schemas) offered in this conversation, for the chat template."""
    parallel_tool_calls: bool | None = None
    """OpenAI's row-level flag: False means every assistant turn makes at most one call."""


@dataclass(frozen=True)
class TextExample:
    """Plain text for continued pre-training: every token is trained."""

    text: str
    line: int = 0


@dataclass(frozen=True)
class PreferencePair:
    prompt: tuple[Message, ...]
    chosen: tuple[Message, ...]
    rejected: tuple[Message, ...]
    line: int = 0


@dataclass(frozen=True)
class LabeledText:
    text: str
    label: str
    text_pair: str | None = None
    line: int = 0
    group: str | None = None
    """Who the row is about, for the fairness report and data.reweight_groups (evals, #17)."""


@dataclass(frozen=True)
class PromptExample:
    """A prompt for online RL (PPO/GRPO), with an optional reference answer for graders."""

    prompt: tuple[Message, ...]
    reference: str | None = None
    extra: dict = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class TokenIds:
    """A pre-tokenized row: ids in the base model's vocabulary, trained where `labels` is not
    -100 (padding already removed by its attention mask)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    line: int = 0


@dataclass(frozen=True)
class Segments:
    """Axolotl's `input_output` row: text segments, each trained on or not (`label`)."""

    segments: tuple[tuple[str, bool], ...]
    line: int = 0

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.segments)


Example = (
    Conversation | TextExample | PreferencePair | LabeledText | PromptExample | TokenIds | Segments
)
