"""Turn normalised examples into `input_ids` + `labels` with the base model's chat template.

Loss masks are computed on characters, not tokens: the template is rendered for each prefix
of the conversation, the character span of every trained assistant turn is recorded, and a
token is trained when it starts inside such a span. That stays right when BPE merges across a
turn boundary, and honours OpenAI's per-message `weight`.

Tool calling: the row's `tools` reach the template (`apply_chat_template(..., tools=...)`) and
assistant `tool_calls` are part of the turn, so the loss covers the calls. A template that
drops them (one without tools support) would train the turn as an empty reply: every call's
function name must show in its turn's span and every tool's name in the prompt, or the row
is refused (UnfaithfulRender, naming its line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.data.examples import Conversation, Message, Segments, TextExample, TokenIds
from core.data.tools import template_tools

IGNORE = -100


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def n_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


class UnfaithfulRender(ValueError):
    """The base model cannot train this row as written (its template drops the tool calls,
    a token id is outside its vocabulary): the job is refused, naming line and field."""

    def __init__(self, line: int, field: str | None, message: str) -> None:
        super().__init__(f"line {line}{', ' + field if field else ''}: {message}")
        self.line, self.field, self.message = line, field, message


def message_dict(m: Message) -> dict[str, Any]:
    """A message as chat templates read it (Hugging Face's convention: tool calls with their
    arguments as an object, the answering call's id and function name on tool messages)."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [dict(call) for call in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def chat_dicts(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    return [message_dict(m) for m in messages]


def _render(
    tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool, **kwargs: Any
) -> str:
    if not messages and not generation_prompt:
        return ""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt, **kwargs
    )


def trained_spans(tokenizer: Any, conv: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its trained assistant turns."""
    msgs = chat_dicts(conv.messages)
    kwargs = template_tools(conv.tools)
    full = _render(tokenizer, msgs, False, **kwargs)
    _check_tools_rendered(full, conv)
    spans = []
    for i, message in enumerate(conv.messages):
        if message.role != "assistant" or message.weight == 0:
            continue
        start = len(_render(tokenizer, msgs[:i], True, **kwargs))
        upto = _render(tokenizer, msgs[: i + 1], False, **kwargs)
        if not full.startswith(upto):
            raise ValueError("the chat template does not render conversations prefix-consistently")
        _check_calls_rendered(upto[start:], message, i, conv.line)
        spans.append((start, len(upto)))
    return full, spans


def _check_tools_rendered(full: str, conv: Conversation) -> None:
    for k, tool in enumerate(conv.tools or ()):
        if tool["function"]["name"] not in full:
            raise UnfaithfulRender(
                conv.line,
                f"tools[{k}]",
                f"the base model's chat template does not render tools (function "
                f"{tool['function']['name']!r} is missing from the prompt): use a base model "
                "whose template supports tools",
            )


def _check_calls_rendered(turn: str, message: Message, i: int, line: int) -> None:
    for k, call in enumerate(message.tool_calls or ()):
        if call["function"]["name"] not in turn:
            raise UnfaithfulRender(
                line,
                f"messages[{i}].tool_calls[{k}]",
                f"the base model's chat template drops the call to "
                f"{call['function']['name']!r}, so the turn would train as an empty reply: "
                "use a base model whose template supports tool calls",
            )


def _encode(tokenizer: Any, text: str, spans: list[tuple[int, int]], max_len: int) -> Tokenized:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [
        tid if any(s <= start < e for s, e in spans) else IGNORE
        for tid, (start, _end) in zip(ids, offsets, strict=True)
    ]
    truncated = len(ids) > max_len
    return Tokenized(ids[:max_len], labels[:max_len], truncated)


def _token_ids(tokenizer: Any, example: TokenIds, max_len: int) -> Tokenized:
    """A pre-tokenized row as given, once every id is known to the base model's vocabulary."""
    vocab = len(tokenizer)
    for k, tid in enumerate(example.input_ids):
        if tid >= vocab:
            raise UnfaithfulRender(
                example.line,
                f"input_ids[{k}]",
                f"token id {tid} is outside the base model's vocabulary (size {vocab}): "
                "the row was tokenized for another model",
            )
    ids, labels = list(example.input_ids), list(example.labels)
    return Tokenized(ids[:max_len], labels[:max_len], len(ids) > max_len)


def _segments(example: Segments) -> tuple[str, list[tuple[int, int]]]:
    """Axolotl `input_output`: the segments joined as written, trained where `label` is true."""
    spans, at = [], 0
    for text, trained in example.segments:
        if trained:
            spans.append((at, at + len(text)))
        at += len(text)
    return example.text, spans


def tokenize_example(
    tokenizer: Any, example: Conversation | TextExample | TokenIds | Segments, max_len: int
) -> Tokenized:
    if isinstance(example, TextExample):
        text = example.text + (tokenizer.eos_token or "")
        return _encode(tokenizer, text, [(0, len(text))], max_len)
    if isinstance(example, TokenIds):
        return _token_ids(tokenizer, example, max_len)
    if isinstance(example, Segments):
        return _encode(tokenizer, *_segments(example), max_len)
    text, spans = trained_spans(tokenizer, example)
    return _encode(tokenizer, text, spans, max_len)
