"""The reward an online RL job (PPO, GRPO) optimises: a grader or a Lathe reward model.

Both become one function `reward(prompts, completions, items) -> scores`, where `prompts` are
message lists, `completions` the sampled texts and `items` the prompts' dataset rows (what a
grader's `{{item.*}}` templates read). A reward model scores the conversation prompt +
completion rendered with its chat template, as it was trained (core.inference.scoring).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.data.examples import PromptExample
from core.methods.base import SpecError, TrainingContext
from core.training.rlhf_data import grader_item

Reward = Callable[[list[list[dict]], list[str], list[dict]], list[float]]


def make_reward(ctx: TrainingContext, block: Any, param: str) -> tuple[Reward, str]:
    """The job's reward function and a name for it (shown in events)."""
    if block.grader is not None:
        return _grader_reward(block.grader, ctx.train_examples, param, ctx.reporter)
    return _reward_model(ctx), "reward_model"


def _grader_reward(
    spec: dict, examples: list, param: str, reporter: Any = None
) -> tuple[Reward, str]:
    """Grades within core.graders.budget: a batch in which some rows ran over their budget
    (and scored 0) is a warning event; the job's budget spent fails the job."""
    from core.graders import (
        GraderError,
        GradingBudget,
        GradingBudgetExceeded,
        check_item,
        make_reward_fn,
        parse_grader,
    )

    grader = parse_grader(spec)  # validated at job creation; parsing again cannot fail
    for example in examples:  # a missing {{item.x}} fails now, naming the line, not mid-run
        assert isinstance(example, PromptExample)
        try:
            check_item(grader, grader_item(example))
        except GraderError as exc:
            raise SpecError(
                f"{param}.grader cannot grade training_file line {example.line}: {exc}",
                param=f"{param}.grader",
            ) from None
    budget = GradingBudget.from_settings()
    score = make_reward_fn(grader, budget)

    def reward(prompts: list[list[dict]], completions: list[str], items: list[dict]):
        before = budget.overruns
        try:
            scores = score(completions, items)
        except GradingBudgetExceeded as exc:  # the job fails naming the grader
            raise SpecError(
                str(exc), param=f"{param}.grader", code="grader_budget_exceeded"
            ) from exc
        if budget.overruns > before and reporter is not None:
            reporter.message(
                f"{budget.overruns - before} of {len(completions)} completions took longer "
                f"than {budget.row_s}s to grade (LATHE_GRADER_ROW_BUDGET_S) and scored 0",
                level="warning",
                data={"grader_overruns": budget.overruns, "graded": budget.rows},
            )
        return scores

    return reward, f"grader:{grader.name}"


def _reward_model(ctx: TrainingContext) -> Reward:
    from core.inference.scoring import RewardScorer
    from core.model_store import load_artifact

    if ctx.reward_model_dirs is None:
        raise RuntimeError("the runner did not provide the reward model")
    scorer = RewardScorer(*load_artifact(*ctx.reward_model_dirs, device=ctx.device))

    def reward(prompts: list[list[dict]], completions: list[str], items: list[dict]):
        return scorer.score(
            [
                p + [{"role": "assistant", "content": c}]
                for p, c in zip(prompts, completions, strict=True)
            ]
        )

    return reward
