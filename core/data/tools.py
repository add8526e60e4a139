"""Tool calling in training rows: OpenAI's `tools`, assistant `tool_calls`, `tool` messages
and `parallel_tool_calls`, and the legacy `functions` / `function_call` / `function` role.

Everything is normalised to one shape, the one Hugging Face chat templates read: a tool is
`{"type": "function", "function": {name, description?, parameters?}}` and a call is
`{"id", "type": "function", "function": {"name", "arguments": {...}}}` with the arguments
decoded into an object (templates write them with `tojson`; OpenAI sends a JSON string). A
call that cannot be rendered faithfully (arguments that are not a JSON object, a function
the row does not offer, two calls where `parallel_tool_calls` is false) is an error naming
its field, never trained as something else.
"""

from __future__ import annotations

import json
from typing import Any

from core.data.examples import Message, Role
from core.data.readers import type_name
from core.data.report import Code, RowLog


def parse_tools(data: dict[str, Any], log: RowLog) -> tuple[dict, ...] | None:
    """The row's tools from `tools`, or from legacy `functions` (each one wrapped)."""
    if "tools" in data and "functions" in data:
        log.error("functions", Code.WRONG_TYPE, "give 'tools' or legacy 'functions', not both")
        return None
    key = "tools" if "tools" in data else "functions"
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        log.error(key, Code.WRONG_TYPE, f"must be a list of objects, got {type_name(value)}")
        return None
    tools = []
    for i, item in enumerate(value):
        tool = {"type": "function", "function": item} if key == "functions" else item
        if _check_tool(tool, f"{key}[{i}]", log, wrapped=key == "tools"):
            tools.append(tool)
    return tuple(tools) if tools and not log.failed else None


def _check_tool(tool: dict, path: str, log: RowLog, wrapped: bool) -> bool:
    if wrapped and tool.get("type", "function") != "function":
        log.error(f"{path}.type", Code.WRONG_TYPE, f"must be 'function', got {tool.get('type')!r}")
        return False
    function = tool.get("function")
    fpath = f"{path}.function" if wrapped else path
    if not isinstance(function, dict):
        log.error(fpath, Code.MISSING_FIELD, "a tool must have a 'function' object")
        return False
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        log.error(f"{fpath}.name", Code.MISSING_FIELD, "a function must have a non-empty name")
        return False
    params = function.get("parameters")
    if params is not None and not isinstance(params, dict):
        log.error(
            f"{fpath}.parameters", Code.WRONG_TYPE, f"must be an object, got {type_name(params)}"
        )
        return False
    return True


def parse_parallel(data: dict[str, Any], log: RowLog) -> bool | None:
    value = data.get("parallel_tool_calls")
    if value is not None and not isinstance(value, bool):
        log.error("parallel_tool_calls", Code.WRONG_TYPE, f"must be a boolean, got {value!r}")
        return None
    return value


def parse_tool_calls(
    m: dict[str, Any], path: str, log: RowLog, role: Any
) -> tuple[dict, ...] | None:
    """An assistant message's calls: `tool_calls`, or legacy `function_call` (one call)."""
    calls, key = m.get("tool_calls"), "tool_calls"
    if m.get("function_call") is not None:
        if calls is not None:
            log.error(f"{path}.function_call", Code.WRONG_TYPE, "give tool_calls or function_call")
            return None
        calls, key = [{"type": "function", "function": m["function_call"]}], "function_call"
    if calls is None:
        return None
    if role != Role.ASSISTANT:
        log.error(f"{path}.{key}", Code.WRONG_ROLE, "only assistant messages make tool calls")
        return None
    if not isinstance(calls, list) or not calls or not all(isinstance(c, dict) for c in calls):
        log.error(f"{path}.{key}", Code.WRONG_TYPE, "must be a non-empty list of objects")
        return None
    legacy = key == "function_call"
    out = [
        _call(c, f"{path}.function_call" if legacy else f"{path}.tool_calls[{k}]", log, k, legacy)
        for k, c in enumerate(calls)
    ]
    return None if any(c is None for c in out) else tuple(c for c in out if c)


def _call(call: dict, path: str, log: RowLog, index: int, legacy: bool) -> dict | None:
    """One call normalised; `legacy`: a `function_call` object (the function itself)."""
    function = call.get("function")
    if call.get("type", "function") != "function" or not isinstance(function, dict):
        log.error(path, Code.WRONG_TYPE, "must be {'type': 'function', 'function': {...}}")
        return None
    fpath = path if legacy else f"{path}.function"
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        log.error(f"{fpath}.name", Code.MISSING_FIELD, "a tool call must name its function")
        return None
    arguments = decode_arguments(function.get("arguments"), f"{fpath}.arguments", log)
    if arguments is None:
        return None
    call_id = call.get("id")
    if call_id is not None and not isinstance(call_id, str):
        log.error(f"{path}.id", Code.WRONG_TYPE, f"must be a string, got {type_name(call_id)}")
        return None
    return {
        "id": call_id or f"call_{index}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def decode_arguments(value: Any, path: str, log: RowLog) -> dict | None:
    """Call arguments as an object: OpenAI's JSON string decoded, or an object as given."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as e:
            log.error(path, Code.INVALID_JSON, f"arguments must be a JSON object: {e}")
            return None
    if not isinstance(value, dict):
        log.error(path, Code.WRONG_TYPE, f"arguments must be a JSON object, got {type_name(value)}")
        return None
    return value


def check_conversation(
    messages: tuple[Message, ...],
    tools: tuple[dict, ...] | None,
    parallel: bool | None,
    log: RowLog,
    path: str = "messages",
) -> None:
    """Calls name offered functions, at most one per turn when parallel calls are off, and a
    tool message's `tool_call_id` answers a call made before it."""
    offered = {t["function"]["name"] for t in tools} if tools else None
    made: set[str] = set()
    for i, m in enumerate(messages):
        for k, call in enumerate(m.tool_calls or ()):
            made.add(call["id"])
            name = call["function"]["name"]
            if offered is not None and name not in offered:
                log.error(
                    f"{path}[{i}].tool_calls[{k}].function.name",
                    Code.UNKNOWN_TOOL,
                    f"calls {name!r}, which is not among the row's tools "
                    f"({', '.join(sorted(offered))})",
                )
        if parallel is False and len(m.tool_calls or ()) > 1:
            log.error(
                f"{path}[{i}].tool_calls",
                Code.PARALLEL_TOOL_CALLS,
                f"{len(m.tool_calls or ())} calls in one turn, but parallel_tool_calls is false",
            )
        if m.role == Role.TOOL and m.tool_call_id is not None and m.tool_call_id not in made:
            log.error(
                f"{path}[{i}].tool_call_id",
                Code.UNKNOWN_TOOL_CALL,
                f"answers {m.tool_call_id!r}, which no earlier assistant turn called",
            )


def template_tools(tools: list[dict] | tuple[dict, ...] | None) -> dict[str, Any]:
    """The `apply_chat_template` keywords for OpenAI `tools`: the full tool objects
    (`{"type": "function", "function": ...}`), as Hugging Face documents them. Training and
    inference both call this, so a template sees the same tools in both."""
    return {"tools": [dict(t) for t in tools]} if tools else {}


def template_messages(messages: list[dict]) -> list[dict]:
    """OpenAI wire messages as chat templates read them: tool-call arguments decoded from
    their JSON string into an object (templates write them with `tojson`; a string would be
    written twice-encoded), as the training rows are. Other fields are kept as sent."""
    out = []
    for m in messages:
        calls = m.get("tool_calls") if isinstance(m, dict) else None
        if calls:
            m = {**m, "tool_calls": [_decoded(c) for c in calls]}
        out.append(m)
    return out


def _decoded(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    try:
        arguments = json.loads(function["arguments"] or "{}")
    except ValueError:
        return call
    if not isinstance(arguments, dict):
        return call
    return {**call, "function": {**function, "arguments": arguments}}
