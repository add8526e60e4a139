"""Turn normalised examples into `input_ids` + `labels` with the base model's chat template.

Loss masks are computed on characters, not tokens: the template is rendered for each prefix
of the conversation, the character span of every trained assistant turn is recorded, and a
token is trained when it starts inside such a span. That stays right when BPE merges across a
turn boundary, and honours OpenAI's per-message `weight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.data.examples import Conversation, Message, TextExample

IGNORE = -100


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def n_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def chat_dicts(messages: tuple[Message, ...]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    if not messages and not generation_prompt:
        return ""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


def trained_spans(tokenizer: Any, conv: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its trained assistant turns."""
    msgs = chat_dicts(conv.messages)
    full = _render(tokenizer, msgs, False)
    spans = []
    for i, message in enumerate(conv.messages):
        if message.role != "assistant" or message.weight == 0:
            continue
        start = len(_render(tokenizer, msgs[:i], True))
        upto = _render(tokenizer, msgs[: i + 1], False)
        if not full.startswith(upto):
            raise ValueError("the chat template does not render conversations prefix-consistently")
        spans.append((start, len(upto)))
    return full, spans


def _encode(tokenizer: Any, text: str, spans: list[tuple[int, int]], max_len: int) -> Tokenized:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [
        tid if any(s <= start < e for s, e in spans) else IGNORE
        for tid, (start, _end) in zip(ids, offsets, strict=True)
    ]
    truncated = len(ids) > max_len
    return Tokenized(ids[:max_len], labels[:max_len], truncated)


def tokenize_example(
    tokenizer: Any, example: Conversation | TextExample, max_len: int
) -> Tokenized:
    if isinstance(example, TextExample):
        text = example.text + (tokenizer.eos_token or "")
        return _encode(tokenizer, text, [(0, len(text))], max_len)
    text, spans = trained_spans(tokenizer, example)
    return _encode(tokenizer, text, spans, max_len)
