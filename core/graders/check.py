"""A client's grader object → a Grader, or a 400 naming the field at fault.

Shared by job creation (`method.<type>.grader`) and the graders API (`grader`), so a grader
is accepted or refused the same way wherever it is given.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidRequest
from core.graders.grade import parse_grader
from core.graders.specs import UNSUPPORTED_TYPES, Grader, check_nesting


def _walk(spec: Any):
    """(dotted path below the grader, node) of every grader object, without recursion
    (check_nesting has bounded the walk)."""
    stack: list[tuple[Any, str]] = [(spec, "")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        subs = node.get("graders")
        if isinstance(subs, dict):
            stack.extend((sub, f"{path}.graders.{key}") for key, sub in subs.items())


def _refuse_unavailable(spec: Any, param: str, settings: Any) -> None:
    """A 400 naming the sub-grader's field for what this deployment cannot run: a type Lathe
    lacks, a python grader without the operator's sandbox, cosine without an encoder."""
    for path, node in _walk(spec):
        kind = node.get("type")
        if kind in UNSUPPORTED_TYPES:
            raise InvalidRequest(
                f"grader type '{kind}' is not supported by Lathe", param=f"{param}{path}.type"
            )
        if kind == "python":
            _check_sandbox(settings, f"{param}{path}.type")
        if kind == "text_similarity" and node.get("evaluation_metric") == "cosine":
            from core.graders.embedding import require_encoder

            require_encoder(settings, f"{param}{path}.evaluation_metric")


def _check_sandbox(settings: Any, param: str) -> None:
    if not settings.graders.python_sandbox:
        raise InvalidRequest(
            "python graders run client code and are off on this deployment (the operator "
            "enables a sandbox with LATHE_GRADER_PYTHON_SANDBOX=true); use string_check, "
            "text_similarity, score_model, label_model or multi",
            param=param,
        )
    from core.graders.sandbox import isolation

    if isolation() is None:
        raise InvalidRequest(
            "python graders are enabled but this host cannot run them without network "
            "(no network namespace: unshare and prlimit are needed)",
            param=param,
        )


def parse_or_invalid(spec: Any, param: str, settings: Any = None) -> Grader:
    """The parsed grader; InvalidRequest naming `param` (and the sub-grader's path within it)
    for a grader this deployment does not run, too deep a nesting, or any other invalid
    field."""
    from pydantic import ValidationError

    from core.settings import get_settings

    settings = settings or get_settings()
    if not isinstance(spec, dict):
        raise InvalidRequest("a grader must be an object", param=param)
    try:
        check_nesting(spec)
    except ValueError as exc:
        raise InvalidRequest(f"invalid grader: {exc}", param=param) from None
    _refuse_unavailable(spec, param, settings)
    try:
        return parse_grader(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequest(
            f"invalid grader: {where + ': ' if where else ''}{first.get('msg')}", param=param
        ) from None
