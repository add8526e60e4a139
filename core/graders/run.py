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

from core.graders.base import GraderTools, JudgeParseError, JudgeUnavailable, PythonGraderError
from core.graders.budget import GradingBudget
from core.graders.grade import leaves
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
"""OpenAI's error flags, all reported; Lathe raises invalid_variable_error (the item lacks a
templated key), unresponsive_reward_error (the row's grading budget ran out),
model_grader_server_error / model_grader_parse_error (a judge that could not answer, or
answered no score) and python_grader_runtime_error (a python grader that failed)."""


def _errors(failure: GraderError | None, overran: bool) -> dict[str, Any]:
    flags: dict[str, Any] = {name: False for name in ERROR_FLAGS}
    flags |= {
        "model_grader_server_error_details": None,
        "python_grader_runtime_error_details": None,
        "python_grader_server_error_type": None,
        "unresponsive_reward_error": overran,
    }
    if isinstance(failure, JudgeUnavailable):
        flags |= {
            "model_grader_server_error": True,
            "model_grader_server_error_details": str(failure),
        }
    elif isinstance(failure, JudgeParseError):
        flags["model_grader_parse_error"] = True
    elif isinstance(failure, PythonGraderError):
        flags |= {
            "python_grader_runtime_error": True,
            "python_grader_runtime_error_details": str(failure),
        }
    elif failure is not None:
        flags["invalid_variable_error"] = True
    return flags


def run_grader(
    grader: Grader, sample: str, item: dict[str, Any], tools: GraderTools | None = None
) -> dict[str, Any]:
    """Grade `sample` against `item` (`grader` bound to `tools`); a missing item key, a spent
    budget, a failed judge or python grader score 0 with OpenAI's error flag set, rather than
    failing the request."""
    budget = GradingBudget.from_settings()
    parts: dict[str, float] = {}
    usage = tools.usage if tools is not None and tools.usage is not None else {}

    def score(text: str, row: dict[str, Any]) -> float:
        if isinstance(grader, MultiGrader):
            value, subs = grader.score_parts(text, row)
            parts.update(subs)
            return value
        return grader.score(text, row)

    start = time.perf_counter()
    failure: GraderError | None = None
    try:
        reward = budget.run(score, sample, item)
    except GraderError as exc:
        reward, failure = 0.0, exc
    tokens = sum(u["total_tokens"] for u in usage.values())
    metadata = {
        "name": grader.name,
        "type": grader.type,
        "errors": _errors(failure, bool(budget.overruns)),
        "execution_time": time.perf_counter() - start,
        "scores": dict(parts),
        "token_usage": tokens if usage else None,
        "sampled_model_name": None,
        "ignored": [f for leaf in leaves(grader) for f in getattr(leaf, "ignored", list)()],
    }
    return {
        "reward": reward,
        "metadata": metadata,
        "sub_rewards": dict(parts),
        "model_grader_token_usage_per_model": dict(usage),
    }
