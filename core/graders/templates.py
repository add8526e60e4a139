"""OpenAI grader templates: `{{sample.output_text}}` and `{{item.<key>[.<key>...]}}`.

Templates are substituted, never evaluated: the only thing a placeholder can do is look a
value up in the sampled completion or the dataset row. Anything else is rejected when the
grader spec is parsed, so a typo fails the job at submission instead of mid-training.
See https://platform.openai.com/docs/guides/graders (Templating).
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_KEY = r"[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+"
_ITEM_PATH = re.compile(rf"item(?:\.(?:{_KEY}))+")

SAMPLE_OUTPUT_TEXT = "sample.output_text"


class GraderError(ValueError):
    """A grader could not score a sample (e.g. the dataset row lacks a templated key)."""


def placeholders(template: str) -> list[str]:
    """The placeholder expressions in `template`, in order (whitespace stripped)."""
    return _PLACEHOLDER.findall(template)


def validate_template(template: str) -> str:
    """Raise ValueError for a placeholder other than sample.output_text or item.<path>."""
    for expr in placeholders(template):
        if expr != SAMPLE_OUTPUT_TEXT and not _ITEM_PATH.fullmatch(expr):
            raise ValueError(
                f"unsupported template variable {{{{{expr}}}}}: use "
                "{{sample.output_text}} or {{item.<key>}}"
            )
    return template


def item_keys(template: str) -> set[str]:
    """Dotted item paths a template reads (without the `item.` prefix)."""
    return {e[len("item.") :] for e in placeholders(template) if e.startswith("item.")}


def _lookup(item: Any, path: str) -> Any:
    value = item
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise GraderError(f"item has no value at '{path}'")
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return str(value)


def render(template: str, sample_text: str, item: dict) -> str:
    """Substitute every placeholder; non-string item values are rendered as JSON."""

    def sub(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr == SAMPLE_OUTPUT_TEXT:
            return sample_text
        return _as_text(_lookup(item, expr[len("item.") :]))

    return _PLACEHOLDER.sub(sub, template)
