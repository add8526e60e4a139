"""Scoring entry points: one sample, or a batch as an RL reward function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter

from core.graders.budget import GradingBudget
from core.graders.specs import Grader, MultiGrader
from core.graders.templates import render

GraderSpec: TypeAdapter[Grader] = TypeAdapter(Grader)
"""Validates a grader dict (or JSON via `GraderSpec.validate_json`) into a Grader model."""


def parse_grader(spec: Mapping[str, Any]) -> Grader:
    """Validate a client's grader object; raises pydantic.ValidationError on a bad spec."""
    return GraderSpec.validate_python(dict(spec))


def grade(grader: Grader, sample_text: str, item: Mapping[str, Any]) -> float:
    """Score one sampled completion against its dataset row (`item`)."""
    return float(grader.score(sample_text, dict(item)))


def check_item(grader: Grader, item: Mapping[str, Any]) -> None:
    """GraderError if a template reads a value the row lacks: the templates are rendered,
    nothing is scored (so checking a whole dataset up front costs no grading time)."""
    if isinstance(grader, MultiGrader):
        for sub in grader.graders.values():
            check_item(sub, item)
        return
    for field in ("input", "reference"):
        template = getattr(grader, field, None)
        if isinstance(template, str):
            render(template, "", dict(item))


def make_reward_fn(
    grader: Grader, budget: GradingBudget | None = None
) -> Callable[[list[str], list[dict]], list[float]]:
    """Batch form for RL trainers: `reward_fn(completions, items) -> scores`, each row graded
    within `budget` (default: the settings'): a row over its budget scores 0.0, and
    GradingBudgetExceeded ends the job once the job's total is spent."""
    budget = budget or GradingBudget.from_settings()

    def reward_fn(completions: list[str], items: list[dict]) -> list[float]:
        if len(completions) != len(items):
            raise ValueError(f"{len(completions)} completions but {len(items)} items")
        return [
            budget.run(grade, grader, text, item)
            for text, item in zip(completions, items, strict=True)
        ]

    reward_fn.__name__ = f"grader_{grader.name}"
    return reward_fn
