"""A grader that is slow on every row fails the GRPO / PPO job once the job's grading budget
is spent, naming the grader, instead of holding the worker."""

from __future__ import annotations

import pytest

from core.jobspec.recipe import SpecError
from core.methods import grpo, ppo
from core.settings import get_settings
from tests.core.methods.conftest import rlhf_ctx
from tests.utils.rlhf import QUESTIONS, prompt_rows

SLOW = {"type": "regex", "name": "slow", "input": "a" * 40 + "!", "pattern": "^(a|a)*$"}


def budgets(monkeypatch, row_s: float, job_s: float) -> None:
    monkeypatch.setenv("LATHE_GRADER_ROW_BUDGET_S", str(row_s))
    monkeypatch.setenv("LATHE_GRADER_JOB_BUDGET_S", str(job_s))
    get_settings.cache_clear()


@pytest.fixture
def small_budget(monkeypatch):
    budgets(monkeypatch, 0.05, 0.5)
    yield
    get_settings.cache_clear()


def test_rows_over_budget_score_zero_with_a_warning_event(monkeypatch, tiny_model, tmp_path):
    budgets(monkeypatch, 0.05, 600)
    try:
        hp = {"total_steps": 2, "batch_size": 2, "num_generations": 2, "max_new_tokens": 4}
        method = {"type": "grpo", "grpo": {"grader": SLOW, "hyperparameters": hp}}
        ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, prompt_rows(QUESTIONS))
        grpo.run(ctx)
    finally:
        get_settings.cache_clear()
    assert [e["mean_reward"] for e in reporter.metrics_events] == [0.0, 0.0]
    warnings = [(text, data) for text, data in reporter.messages if "LATHE_GRADER_ROW" in text]
    assert warnings, reporter.messages
    # 2 steps of 2 prompts x 2 completions; a search timed out at just under the budget
    # scores 0 too, but is not counted as over it
    assert warnings[-1][1]["graded"] == 8 and warnings[-1][1]["grader_overruns"] >= 2


@pytest.mark.parametrize("recipe", [grpo, ppo], ids=["grpo", "ppo"])
def test_slow_grader_fails_the_job_naming_it(recipe, small_budget, tiny_model, tmp_path):
    name = recipe.__name__.rsplit(".", 1)[-1]
    hp = {"total_steps": 50, "batch_size": 4, "max_new_tokens": 4}
    if name == "grpo":
        hp["num_generations"] = 4
    method = {"type": name, name: {"grader": SLOW, "hyperparameters": hp}}
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, prompt_rows(QUESTIONS))
    with pytest.raises(SpecError, match="LATHE_GRADER_JOB_BUDGET_S") as err:
        recipe.run(ctx)
    assert err.value.param == f"method.{name}.grader"
    assert err.value.code == "grader_budget_exceeded"
    assert len(reporter.metrics_events) < 50  # stopped early, not after every step
