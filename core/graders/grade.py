"""Scoring entry points: one sample, or a batch as an RL reward function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter

from core.graders.specs import Grader

GraderSpec: TypeAdapter[Grader] = TypeAdapter(Grader)
"""Validates a grader dict (or JSON via `GraderSpec.validate_json`) into a Grader model."""


def parse_grader(spec: Mapping[str, Any]) -> Grader:
    """Validate a client's grader object; raises pydantic.ValidationError on a bad spec."""
    return GraderSpec.validate_python(dict(spec))


def grade(grader: Grader, sample_text: str, item: Mapping[str, Any]) -> float:
    """Score one sampled completion against its dataset row (`item`)."""
    return float(grader.score(sample_text, dict(item)))


def make_reward_fn(grader: Grader) -> Callable[[list[str], list[dict]], list[float]]:
    """Batch form for RL trainers: `reward_fn(completions, items) -> scores`."""

    def reward_fn(completions: list[str], items: list[dict]) -> list[float]:
        if len(completions) != len(items):
            raise ValueError(f"{len(completions)} completions but {len(items)} items")
        return [grade(grader, text, item) for text, item in zip(completions, items, strict=True)]

    reward_fn.__name__ = f"grader_{grader.name}"
    return reward_fn
