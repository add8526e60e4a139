"""Parsing and checking of messages, prompts and replies: shared by every format that holds
conversations (chat, ShareGPT, preference, ranked, prompts), so a message is held to the same
rules wherever it appears and its errors carry the same codes."""

from __future__ import annotations

from typing import Any

from core.data.examples import Message, Role
from core.data.readers import type_name
from core.data.report import Code, RowLog
from core.data.tools import parse_tool_calls

ROLES = frozenset(r.value for r in Role)


def get_str(
    data: dict[str, Any],
    key: str,
    log: RowLog,
    path: str | None = None,
    *,
    required: bool = True,
    empty_code: Code | None = Code.EMPTY_CONTENT,
) -> str | None:
    """A string field; None (after logging, when required) if missing, wrong or empty."""
    path = path or key
    value = data.get(key)
    if value is None:
        if required:
            log.error(path, Code.MISSING_FIELD, f"missing required field {key!r}")
        return None
    if not isinstance(value, str):
        log.error(path, Code.WRONG_TYPE, f"must be a string, got {type_name(value)}")
        return None
    if empty_code is not None and not value.strip():
        log.error(path, empty_code, "must not be empty")
        return None
    return value


def parse_messages(
    value: Any, path: str, log: RowLog, *, allow_weight: bool
) -> tuple[Message, ...] | None:
    """A non-empty list of well-formed messages, or None once any problem is logged. Every
    message is checked (not just the first bad one) so a client fixes a row in one go."""
    if value is None:
        log.error(path, Code.MISSING_FIELD, f"missing required field {path.rsplit('.', 1)[-1]!r}")
        return None
    if not isinstance(value, list):
        log.error(path, Code.WRONG_TYPE, f"must be a list of messages, got {type_name(value)}")
        return None
    if not value:
        log.error(path, Code.EMPTY_MESSAGES, "must contain at least one message")
        return None
    messages = [parse_message(m, f"{path}[{i}]", log, allow_weight) for i, m in enumerate(value)]
    if any(m is None for m in messages):
        return None
    return tuple(m for m in messages if m is not None)


def parse_message(m: Any, path: str, log: RowLog, allow_weight: bool) -> Message | None:
    if not isinstance(m, dict):
        log.error(path, Code.WRONG_TYPE, f"a message must be an object, got {type_name(m)}")
        return None
    before = log.failed
    log.failed = False
    role = m.get("role")
    legacy_function = role == "function"  # OpenAI's legacy function result: a tool message
    if legacy_function:
        role = Role.TOOL.value
    if role is None:
        log.error(f"{path}.role", Code.MISSING_FIELD, "missing required field 'role'")
    elif not isinstance(role, str):
        log.error(f"{path}.role", Code.WRONG_TYPE, f"must be a string, got {type_name(role)}")
    elif role not in ROLES:
        log.error(
            f"{path}.role",
            Code.UNKNOWN_ROLE,
            f"unknown role {role!r}; expected one of {', '.join(sorted(ROLES))}",
        )
    tool_calls = parse_tool_calls(m, path, log, role)
    content = _content(m.get("content"), f"{path}.content", log, optional=bool(tool_calls))
    weight = _weight(m, path, log, role, allow_weight)
    tool_call_id = m.get("tool_call_id")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        log.error(
            f"{path}.tool_call_id",
            Code.WRONG_TYPE,
            f"must be a string, got {type_name(tool_call_id)}",
        )
    name = m.get("name")
    if legacy_function and not (isinstance(name, str) and name.strip()):
        log.error(f"{path}.name", Code.MISSING_FIELD, "a 'function' message must name its function")
    elif name is not None and not isinstance(name, str):
        log.error(f"{path}.name", Code.WRONG_TYPE, f"must be a string, got {type_name(name)}")
    failed, log.failed = log.failed, before or log.failed
    if failed:
        return None
    return Message(
        role=str(role),
        content=content or "",
        weight=weight,
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        name=name if role == Role.TOOL else None,
    )


def _content(content: Any, path: str, log: RowLog, *, optional: bool) -> str | None:
    """Message text: a string, or OpenAI's list of text parts (joined). Other part types
    (images, audio) have no meaning for a text model and are rejected, not dropped."""
    if content is None:
        if not optional:
            log.error(path, Code.MISSING_FIELD, "missing required field 'content'")
        return None
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                log.error(
                    f"{path}[{i}]",
                    Code.UNSUPPORTED_CONTENT,
                    "only text parts ({'type': 'text', 'text': ...}) are supported",
                )
                return None
            texts.append(part["text"])
        content = "".join(texts)
    if not isinstance(content, str):
        log.error(path, Code.WRONG_TYPE, f"must be a string, got {type_name(content)}")
        return None
    if not content.strip() and not optional:
        log.error(path, Code.EMPTY_CONTENT, "content must not be empty")
        return None
    return content


def _weight(m: dict, path: str, log: RowLog, role: Any, allow_weight: bool) -> float | None:
    weight = m.get("weight")
    if weight is None:
        return None
    if not allow_weight or role != Role.ASSISTANT:
        where = "assistant messages" if allow_weight else "supervised (chat) data"
        log.error(f"{path}.weight", Code.WEIGHT_NOT_ALLOWED, f"weight is only allowed on {where}")
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight not in (0, 1):
        log.error(f"{path}.weight", Code.INVALID_WEIGHT, f"weight must be 0 or 1, got {weight!r}")
        return None
    return float(weight)


def parse_prompt(value: Any, path: str, log: RowLog) -> tuple[Message, ...] | None:
    """A prompt given as a string (one user turn) or as a message list."""
    if isinstance(value, str):
        if not value.strip():
            log.error(path, Code.EMPTY_CONTENT, "must not be empty")
            return None
        return (Message(role=Role.USER.value, content=value),)
    if value is None:
        log.error(path, Code.MISSING_FIELD, f"missing required field {path!r}")
        return None
    if not isinstance(value, list):
        log.error(
            path, Code.WRONG_TYPE, f"must be a string or a list of messages, got {type_name(value)}"
        )
        return None
    return parse_messages(value, path, log, allow_weight=False)


def parse_reply(value: Any, path: str, log: RowLog, empty: Code) -> tuple[Message, ...] | None:
    """A completion (chosen, rejected, ranked): a string, one assistant message, or a list
    of assistant messages. Only assistant turns: anything else would be trained as output."""
    if isinstance(value, str):
        if not value.strip():
            log.error(path, empty, "must not be empty")
            return None
        return (Message(role=Role.ASSISTANT.value, content=value),)
    if value is None:
        log.error(path, Code.MISSING_FIELD, f"missing required field {path!r}")
        return None
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and not value:
        log.error(path, empty, "must contain at least one assistant message")
        return None
    if not isinstance(value, list):
        log.error(
            path,
            Code.WRONG_TYPE,
            f"must be a string or a list of assistant messages, got {type_name(value)}",
        )
        return None
    messages = parse_messages(value, path, log, allow_weight=False)
    if messages is None:
        return None
    for i, m in enumerate(messages):
        if m.role != Role.ASSISTANT:
            log.error(f"{path}[{i}].role", Code.WRONG_ROLE, f"must be 'assistant', got {m.role!r}")
            return None
    return messages
