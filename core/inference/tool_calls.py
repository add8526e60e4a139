"""Tool calls in the Hermes style most open chat templates use: the model writes
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, which becomes OpenAI's
`message.tool_calls`. A forced call (`tool_choice` "required" or a named function) is decoded
under a JSON Schema of the call, so it always parses."""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import InvalidRequest
from core.ids import new_id

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def template_supports_tools(tokenizer: Any) -> bool:
    template = tokenizer.chat_template or ""
    return "tools" in (template if isinstance(template, str) else json.dumps(template))


def forced_call_schema(tools: list[dict], choice: Any) -> dict | None:
    """The JSON Schema a forced call must match; None when the model chooses freely."""
    functions = [t["function"] for t in tools]
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        functions = [f for f in functions if f["name"] == name]
        if not functions:
            raise InvalidRequest(
                f"tool_choice names {name!r}, which is not in tools", param="tool_choice"
            )
    elif choice != "required":
        return None
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": f.get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in functions
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def call(payload: dict) -> dict:
    return {
        "id": new_id("call_"),
        "type": "function",
        "function": {
            "name": payload["name"],
            "arguments": json.dumps(payload.get("arguments", {})),
        },
    }


def parse(
    text: str, forced: bool, parallel: bool, names: list[str] | None = None, cut: bool = False
) -> tuple[str | None, list[dict]]:
    """(content, tool_calls) of a generated reply. Unparseable blocks stay in the content.
    `cut`: the reply ran out of max_tokens, so a call it began is returned with the partial
    arguments it got to (OpenAI's shape, with finish_reason "length"); `names`: the tools'
    names, to complete a name the cut left partial."""
    if forced:
        try:
            return None, [call(json.loads(text))]
        except (ValueError, KeyError, TypeError):
            if cut:
                return None, [partial_call(text, names or [])]
            return text, []
    calls: list[dict] = []
    for match in _CALL.finditer(text):
        try:
            payload = json.loads(match.group(1))
            calls.append(call(payload))
        except (ValueError, KeyError, TypeError):
            continue
    content = _CALL.sub("", text)
    if cut and (start := content.rfind(_OPEN)) >= 0:  # a call begun and not closed
        calls.append(partial_call(content[start + len(_OPEN) :], names or []))
        content = content[:start]
    if not calls:
        return text, []
    return content.strip() or None, calls if parallel else calls[:1]


_OPEN = "<tool_call>"
_NAME = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)(")?')
_ARGUMENTS = re.compile(r'\s*,\s*"arguments"\s*:\s*')


def partial_call(text: str, names: list[str]) -> dict:
    """The call a reply cut short began: its name (completed from the tools when the cut left
    a prefix only one of them has) and its arguments as far as they got, raw JSON text."""
    name, arguments = "", ""
    found = _NAME.match(text)
    prefix = found.group(1) if found else ""
    if found and found.group(2):
        name = prefix
        rest = _ARGUMENTS.match(text, found.end())
        arguments = text[rest.end() :] if rest else ""
    else:
        matching = [n for n in names if n.startswith(prefix)]
        name = matching[0] if len(matching) == 1 else prefix
    return {
        "id": new_id("call_"),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
