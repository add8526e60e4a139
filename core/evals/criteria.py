"""An eval's testing criteria: graders (core.graders, the ones RFT jobs score with), each with
the score at or above which a row passes it.

    criteria = parse_criteria(eval.testing_criteria, settings)
    [Criterion(name, grader, threshold), ...]

pass_threshold: text_similarity needs one (as OpenAI's did); the others default to 0.5 —
string_check and label_model score 0 or 1, so that means "the check held", and score_model,
python and multi scores pass from halfway up unless the client says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidRequest
from core.graders.check import parse_or_invalid
from core.graders.grade import leaves
from core.graders.specs import Grader
from core.graders.templates import SAMPLE_OUTPUT_TEXT, placeholders

DEFAULT_THRESHOLD = 0.5
CRITERIA_TYPES = (
    "string_check",
    "text_similarity",
    "score_model",
    "label_model",
    "python",
    "multi",
    "regex",
    "json_schema",
)


@dataclass
class Criterion:
    name: str
    grader: Grader
    threshold: float


def parse_criteria(specs: list[dict[str, Any]], settings: Any) -> list[Criterion]:
    """Each criterion parsed; a 400 naming `testing_criteria[i]...` for a bad one."""
    found: list[Criterion] = []
    for i, spec in enumerate(specs):
        found.append(_parse_one(spec, f"testing_criteria[{i}]", settings))
    names = [c.name for c in found]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidRequest(
                f"two testing criteria are named {name!r}: results are reported by name",
                param=f"testing_criteria[{i}].name",
            )
    return found


def _parse_one(spec: dict[str, Any], param: str, settings: Any) -> Criterion:
    if not isinstance(spec, dict):
        raise InvalidRequest("a testing criterion must be an object", param=param)
    spec = dict(spec)
    kind = spec.get("type")
    if kind not in CRITERIA_TYPES:
        raise InvalidRequest(
            f"testing criterion type {kind!r} is not supported: use {', '.join(CRITERIA_TYPES)}",
            param=f"{param}.type",
        )
    threshold = spec.pop("pass_threshold", None)
    if threshold is None and kind == "text_similarity":
        raise InvalidRequest(
            "a text_similarity criterion needs a pass_threshold", param=f"{param}.pass_threshold"
        )
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
    ):
        raise InvalidRequest("pass_threshold must be a number", param=f"{param}.pass_threshold")
    grader = parse_or_invalid(spec, param, settings)
    value = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    return Criterion(grader.name, grader, value)


def criteria_item_keys(criteria: list[Criterion]) -> list[tuple[str, str]]:
    """(item path, param) of each {{item.*}} the criteria read."""
    return [
        (key, f"testing_criteria[{i}]")
        for i, c in enumerate(criteria)
        for key in sorted(c.grader.item_keys())
    ]


def reads_sample(criteria: list[Criterion]) -> bool:
    """Whether any criterion reads {{sample.output_text}} (a python grader always may)."""
    return any(
        leaf.type == "python" or SAMPLE_OUTPUT_TEXT in placeholders(t)
        for c in criteria
        for leaf in leaves(c.grader)
        for t in [*leaf.templates(), ""]
    )
