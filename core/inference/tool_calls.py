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


def parse(text: str, forced: bool, parallel: bool) -> tuple[str | None, list[dict]]:
    """(content, tool_calls) of a generated reply. Unparseable blocks stay in the content."""
    if forced:
        try:
            return None, [call(json.loads(text))]
        except (ValueError, KeyError, TypeError):
            return text, []  # cut short by max_tokens: not a call
    calls: list[dict] = []
    for match in _CALL.finditer(text):
        try:
            payload = json.loads(match.group(1))
            calls.append(call(payload))
        except (ValueError, KeyError, TypeError):
            continue
    if not calls:
        return text, []
    content = _CALL.sub("", text).strip() or None
    return content, calls if parallel else calls[:1]
