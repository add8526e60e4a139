"""JSON Schema validation whose every regex runs on the `regex` engine with a timeout.

jsonschema matches `pattern`, `patternProperties` (and `additionalProperties` next to them)
with Python's `re`, which cannot be interrupted: `^(a+)+$` against "aaaa…!" would hang the
worker. Those keywords are replaced here by versions that use core.graders.budget's
timeouts; a search that times out ends validation with TimeoutError (the sample scores 0).
`unevaluatedProperties` still matches `patternProperties` with `re` inside jsonschema, so a
schema may not combine the two.

Schemas are client input too: bounded in nesting depth, size and pattern length when parsed.
"""

from __future__ import annotations

import json
from typing import Any

import regex

from core.graders.budget import regex_timeout

MAX_SCHEMA_DEPTH = 32
"""Nesting of objects and arrays in a json_schema grader's schema."""
MAX_SCHEMA_BYTES = 100_000
"""Size of the schema as JSON."""
MAX_PATTERN_LENGTH = 1000
"""Characters of one regex (a regex grader's pattern, a schema's pattern)."""


def search(pattern: str, text: str) -> bool:
    """`re.search` semantics on the regex engine, within the current timeout."""
    return regex.search(pattern, text, regex.VERSION0, timeout=regex_timeout()) is not None


def _pattern(validator, patrn, instance, schema):
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not search(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in pattern_properties.items():
        for k, v in instance.items():
            if search(patrn, k):
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _additional_properties(validator, aP, instance, schema):
    from jsonschema import ValidationError

    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        k for k in instance if k not in properties and not any(search(p, k) for p in patterns)
    ]
    if validator.is_type(aP, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], aP, path=extra)
    elif not aP and extras:
        yield ValidationError(f"additional properties are not allowed: {sorted(extras)}")


def safe_validator(schema: dict[str, Any]) -> Any:
    """A validator for `schema` (any draft) with bounded regexes; ValueError if the schema
    is invalid or beyond the limits above."""
    import jsonschema

    check_shape(schema)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from None
    safe = jsonschema.validators.extend(
        cls,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )
    return safe(schema)


def check_shape(schema: Any) -> None:
    """Depth, size, local `$ref`s only, compilable patterns: in one walk without recursion."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    keywords: set[str] = set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise ValueError(f"schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        if isinstance(node, dict):
            keywords.update(node)
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                raise ValueError("schema may only use local '$ref's ('#/...')")
            if isinstance(node.get("pattern"), str):
                _compile(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                for patrn in node["patternProperties"]:
                    _compile(patrn)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise ValueError(f"schema is larger than {MAX_SCHEMA_BYTES} bytes as JSON")
    if {"unevaluatedProperties", "patternProperties"} <= keywords:
        raise ValueError("a schema may not combine unevaluatedProperties and patternProperties")


def _compile(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    try:
        regex.compile(pattern, regex.VERSION0)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regex pattern {pattern[:50]!r}: {exc}") from None
