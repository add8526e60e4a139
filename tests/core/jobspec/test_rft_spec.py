"""OpenAI's reinforcement block → the GRPO block the worker trains with (core.jobspec.rft)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.jobspec.job import JobCreate

GRADER = {"type": "string_check", "name": "g", "input": "a", "reference": "a", "operation": "eq"}


def spec(**hp) -> JobCreate:
    method = {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": hp}}
    created = JobCreate.model_validate({"model": "m", "training_file": "f", "method": method})
    # the worker reads the stored dump back: the mapping must survive that round trip
    return JobCreate.model_validate(created.model_dump(mode="json", exclude_none=True))


def test_openai_knobs_map_onto_grpo():
    block = spec(
        n_epochs=3, batch_size=6, learning_rate_multiplier=2.5, compute_multiplier=0.5
    ).method.reinforcement
    grpo = block.to_grpo()
    hp = grpo.hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (3, 6, 2.5)
    assert hp.num_generations == 4 and grpo.grader == GRADER
    assert block.ignored() == {}


@pytest.mark.parametrize(
    ("hp", "generations"),
    [
        ({}, 8),
        ({"compute_multiplier": 8}, 64),
        ({"compute_multiplier": 0.3}, 2),
        ({"num_generations": 3}, 3),
    ],
)
def test_compute_multiplier_scales_the_group(hp, generations):
    assert spec(**hp).method.reinforcement.to_grpo().hyperparameters.num_generations == generations


def test_knobs_grpo_cannot_honour_are_reported():
    block = spec(eval_interval=5, eval_samples=2, reasoning_effort="default").method.reinforcement
    ignored = block.ignored()
    assert set(ignored) == {"eval_interval", "eval_samples", "reasoning_effort"}
    assert "no meaning for open models" in ignored["reasoning_effort"]
    assert "eval_interval" not in block.to_grpo().hyperparameters.model_dump()


def test_group_size_given_twice_is_refused():
    with pytest.raises(ValidationError, match="compute_multiplier or num_generations"):
        spec(compute_multiplier=2, num_generations=4)
