"""How big a grader spec may be, checked before pydantic parses it.

Job specs (core.jobspec.rlhf) check a grader's shape before its type is known to them, and the
graders themselves (core.graders.specs) check it again when parsed: both read it here.
"""

from __future__ import annotations

from typing import Any

MAX_GRADER_DEPTH = 8
"""Levels of multi graders inside multi graders (1: no multi at all)."""
MAX_GRADERS = 64
"""Graders in one spec, counting every sub-grader at every level."""


def check_nesting(value: Any) -> None:
    """ValueError if multi graders nest deeper than MAX_GRADER_DEPTH or hold more than
    MAX_GRADERS in all: checked in one walk without recursion, before pydantic descends (it
    would recurse once per level, and a 400-deep spec ends in a RecursionError)."""
    stack, count = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_GRADER_DEPTH:
            raise ValueError(f"multi graders nest deeper than {MAX_GRADER_DEPTH} levels")
        if count > MAX_GRADERS:
            raise ValueError(f"more than {MAX_GRADERS} graders in one spec")
        subs = node.get("graders") if isinstance(node, dict) else None
        if isinstance(subs, dict):
            stack.extend((sub, depth + 1) for sub in subs.values())
