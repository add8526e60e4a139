"""A grader that is slow on every row fails the GRPO / PPO job once the job's grading budget
is spent, naming the grader, instead of holding the worker."""

from __future__ import annotations

import pytest

from core.methods import grpo, ppo
from core.methods.base import SpecError
from core.settings import get_settings
from tests.core.methods.conftest import rlhf_ctx
from tests.utils.rlhf import QUESTIONS, prompt_rows

SLOW = {"type": "regex", "name": "slow", "input": "a" * 40 + "!", "pattern": "^(a|a)*$"}


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setenv("LATHE_GRADER_ROW_BUDGET_S", "0.05")
    monkeypatch.setenv("LATHE_GRADER_JOB_BUDGET_S", "0.5")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


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
