"""One grader on one sample, reported as OpenAI's `POST /fine_tuning/alpha/graders/run`.

    run_grader(grader, "Paris", {"reference_answer": "Paris"})
    → {"reward": 1.0, "sub_rewards": {}, "model_grader_token_usage_per_model": {},
       "metadata": {"name", "type", "errors": {...}, "execution_time", "scores",
                    "token_usage", "sampled_model_name"}}

The sample is graded exactly as a training run grades it (the same row budget), so what a
client tries here is what its RFT job's reward will be.
"""

from __future__ import annotations

import time
from typing import Any

from core.graders.budget import GradingBudget
from core.graders.specs import Grader, MultiGrader
from core.graders.templates import GraderError

ERROR_FLAGS = (
    "formula_parse_error",
    "invalid_variable_error",
    "model_grader_parse_error",
    "model_grader_refusal_error",
    "model_grader_server_error",
    "other_error",
    "python_grader_runtime_error",
    "python_grader_server_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
)
"""OpenAI's error flags, all reported; Lathe can raise invalid_variable_error (the item lacks
a templated key) and unresponsive_reward_error (the row's grading budget ran out)."""


def _errors(**raised: bool) -> dict[str, Any]:
    flags: dict[str, Any] = {name: raised.get(name, False) for name in ERROR_FLAGS}
    flags |= {
        "model_grader_server_error_details": None,
        "python_grader_runtime_error_details": None,
        "python_grader_server_error_type": None,
    }
    return flags


def run_grader(grader: Grader, sample: str, item: dict[str, Any]) -> dict[str, Any]:
    """Grade `sample` against `item`; a missing item key or a spent budget scores 0 with its
    error flag set, as OpenAI reports them, rather than failing the request."""
    budget = GradingBudget.from_settings()
    parts: dict[str, float] = {}

    def score(text: str, row: dict[str, Any]) -> float:
        if isinstance(grader, MultiGrader):
            value, subs = grader.score_parts(text, row)
            parts.update(subs)
            return value
        return grader.score(text, row)

    start = time.perf_counter()
    missing = False
    try:
        reward = budget.run(score, sample, item)
    except GraderError:
        reward, missing = 0.0, True
    metadata = {
        "name": grader.name,
        "type": grader.type,
        "errors": _errors(
            invalid_variable_error=missing, unresponsive_reward_error=bool(budget.overruns)
        ),
        "execution_time": time.perf_counter() - start,
        "scores": dict(parts),
        "token_usage": None,
        "sampled_model_name": None,
    }
    return {
        "reward": reward,
        "metadata": metadata,
        "sub_rewards": dict(parts),
        "model_grader_token_usage_per_model": {},
    }
