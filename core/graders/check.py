"""A client's grader object → a Grader, or a 400 naming the field at fault.

Shared by job creation (`method.<type>.grader`) and the graders API (`grader`), so a grader
is accepted or refused the same way wherever it is given.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidRequest
from core.graders.grade import parse_grader
from core.graders.specs import UNSUPPORTED_TYPES, Grader, check_nesting


def _unsupported_path(spec: Any) -> tuple[str, str] | None:
    """(dotted path below the grader, type) of the first grader Lathe does not run, found
    without recursion (check_nesting has bounded the walk)."""
    stack: list[tuple[Any, str]] = [(spec, "")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("type") in UNSUPPORTED_TYPES:
            return path, str(node["type"])
        subs = node.get("graders")
        if isinstance(subs, dict):
            stack.extend((sub, f"{path}.graders.{key}") for key, sub in subs.items())
    return None


def parse_or_invalid(spec: Any, param: str) -> Grader:
    """The parsed grader; InvalidRequest naming `param` (and the sub-grader's path within it)
    for a grader type Lathe does not run, too deep a nesting, or any other invalid field."""
    from pydantic import ValidationError

    if not isinstance(spec, dict):
        raise InvalidRequest("a grader must be an object", param=param)
    try:
        check_nesting(spec)
    except ValueError as exc:
        raise InvalidRequest(f"invalid grader: {exc}", param=param) from None
    if found := _unsupported_path(spec):
        path, kind = found
        raise InvalidRequest(
            f"grader type '{kind}' is not supported: Lathe runs no client code or hosted "
            "models; use string_check, text_similarity, regex, json_schema or multi",
            param=f"{param}{path}.type",
        )
    try:
        return parse_grader(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequest(
            f"invalid grader: {where + ': ' if where else ''}{first.get('msg')}", param=param
        ) from None
