"""Scoring entry points: one sample, or a batch as an RL reward function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter

from core.graders.base import GraderTools
from core.graders.budget import GradingBudget
from core.graders.model_graders import LabelModelGrader, ScoreModelGrader
from core.graders.specs import Grader, MultiGrader, TextSimilarityGrader
from core.graders.templates import GraderError, render

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
    for template in grader.templates():
        render(template, "", dict(item))


def leaves(grader: Grader) -> list[Grader]:
    """The graders that score (every non-multi grader inside `grader`, or itself)."""
    if isinstance(grader, MultiGrader):
        return [leaf for sub in grader.graders.values() for leaf in leaves(sub)]
    return [grader]


def bind(grader: Grader, tools: GraderTools) -> Grader:
    """Give every grader inside `grader` the tools it scores with, and load what must be
    loaded (cosine's encoder) now, outside any row's grading budget."""
    for leaf in leaves(grader):
        leaf._tools = tools
        if isinstance(leaf, TextSimilarityGrader):
            _warm(leaf.evaluation_metric, tools)
    return grader


def _warm(metric: str, tools: GraderTools) -> None:
    """Import (or load) what a metric scores with once, outside the row budget: importing
    nltk or sacrebleu costs more CPU than one row may take."""
    if metric == "cosine":
        from core.graders.embedding import ENCODERS

        ENCODERS.get(tools.settings)
        return
    from core.graders.similarity import similarity

    similarity(metric, "warm up", "warm up")


def judge_models(grader: Grader) -> list[tuple[str, str]]:
    """(model, dotted path below the grader) of each judge model the grader calls."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Grader, str]] = [(grader, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, MultiGrader):
            stack.extend((sub, f"{path}.graders.{key}") for key, sub in node.graders.items())
        elif isinstance(node, ScoreModelGrader | LabelModelGrader):
            found.append((node.model, f"{path}.model"))
    return found


def make_reward_fn(
    grader: Grader, budget: GradingBudget | None = None
) -> Callable[[list[str], list[dict]], list[float]]:
    """Batch form for RL trainers: `reward_fn(completions, items) -> scores`, each row graded
    within `budget` (default: the settings'): a row over its budget scores 0.0, and
    GradingBudgetExceeded ends the job once the job's total is spent. A row whose judge or
    python grader failed scores 0.0 too, counted in `reward_fn.errors` (its last message in
    `reward_fn.last_error`), so the caller can report it."""
    budget = budget or GradingBudget.from_settings()

    def safe_grade(text: str, item: dict) -> float:
        try:
            return grade(grader, text, item)
        except GraderError as exc:
            reward_fn.errors += 1  # type: ignore[attr-defined]
            reward_fn.last_error = str(exc)  # type: ignore[attr-defined]
            return 0.0

    def reward_fn(completions: list[str], items: list[dict]) -> list[float]:
        if len(completions) != len(items):
            raise ValueError(f"{len(completions)} completions but {len(items)} items")
        return [
            budget.run(safe_grade, text, item)
            for text, item in zip(completions, items, strict=True)
        ]

    reward_fn.errors = 0  # type: ignore[attr-defined]
    reward_fn.last_error = ""  # type: ignore[attr-defined]

    reward_fn.__name__ = f"grader_{grader.name}"
    return reward_fn
