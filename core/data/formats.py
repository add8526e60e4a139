"""Which dataset format a record is in, and which formats each training method accepts.

Detection looks at a record's keys only, most distinctive first, so a record that is missing
a required field is still recognised (and then reported as "missing field") instead of being
mistaken for another format. `{"messages": [...]}` is the one ambiguous shape: chat for
supervised training, prompts for online RL; it is resolved once per file (resolve_messages).
"""

from __future__ import annotations

from typing import Any

from core.data.report import DatasetFormat

F = DatasetFormat

METHOD_FORMATS: dict[str, frozenset[DatasetFormat]] = {
    "supervised": frozenset(
        {F.CHAT, F.PROMPT_COMPLETION, F.ALPACA, F.SHAREGPT, F.TEXT, F.TOKENIZED, F.INPUT_OUTPUT}
    ),
    "dpo": frozenset({F.PREFERENCE, F.RANKED}),
    "reward_model": frozenset({F.PREFERENCE, F.RANKED}),
    "ppo": frozenset({F.PROMPTS}),
    "grpo": frozenset({F.PROMPTS}),
    "reinforcement": frozenset({F.PROMPTS}),
    "classification": frozenset({F.CLASSIFICATION}),
    "distillation": frozenset({F.CHAT, F.PROMPT_COMPLETION, F.ALPACA, F.SHAREGPT}),
}

_PREFERENCE_KEYS = frozenset({"preferred_output", "non_preferred_output", "chosen", "rejected"})
_RANKED_KEYS = frozenset({"completions", "ranking"})
_REFERENCE_KEYS = frozenset({"reference", "reference_answer"})


def formats_for_method(method: str) -> set[DatasetFormat]:
    """The formats a method can train on. Unknown methods are a caller bug: ValueError."""
    try:
        return set(METHOD_FORMATS[method])
    except KeyError:
        raise ValueError(
            f"unknown method {method!r}; expected one of {', '.join(METHOD_FORMATS)}"
        ) from None


def detect(record: dict[str, Any]) -> DatasetFormat | None:
    """The format a record's keys point to, or None if they point nowhere. A `messages`
    record is reported as CHAT; callers map it through resolve_messages."""
    keys = record.keys()
    if "input_ids" in keys:
        return F.TOKENIZED
    if "segments" in keys:
        return F.INPUT_OUTPUT
    if keys & _PREFERENCE_KEYS:
        return F.PREFERENCE
    if keys & _RANKED_KEYS:
        return F.RANKED
    if "completion" in keys:
        return F.PROMPT_COMPLETION
    if "messages" in keys:
        return F.CHAT
    if "prompt" in keys:
        return F.PROMPTS
    if "conversations" in keys:
        return F.SHAREGPT
    if keys & {"instruction", "output"}:
        return F.ALPACA
    if "label" in keys:
        return F.CLASSIFICATION
    if "text" in keys:
        return F.TEXT
    return None


def resolve_messages(
    record: dict[str, Any], expected: DatasetFormat | None, method: str | None
) -> DatasetFormat:
    """Chat or prompts for a file of `messages` records, decided once from the first record:
    the declared format, else the method, else the record's shape (a reference answer or a
    final user turn means prompts)."""
    if expected in (F.CHAT, F.PROMPTS):
        return expected
    if method in ("ppo", "grpo", "reinforcement"):
        return F.PROMPTS
    if method is not None:
        return F.CHAT
    if record.keys() & _REFERENCE_KEYS:
        return F.PROMPTS
    messages = record.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return F.PROMPTS if messages[-1].get("role") == "user" else F.CHAT
    return F.CHAT
