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
from core.jobspec.recipe import SpecError, TrainingContext
from core.training.rlhf_data import grader_item

Reward = Callable[[list[list[dict]], list[str], list[dict]], list[float]]


def make_reward(ctx: TrainingContext, block: Any, param: str) -> tuple[Reward, str]:
    """The job's reward function and a name for it (shown in events)."""
    if block.grader is not None:
        return _grader_reward(
            block.grader, ctx.train_examples, param, ctx.reporter, _grader_tools(ctx)
        )
    return _reward_model(ctx), "reward_model"


def _grader_tools(ctx: TrainingContext) -> Any:
    """What the job's graders call: judges through the inference service (each judge model
    looked up as the job's organization may use it: its own, a base, or shared with it),
    cosine's encoder and the python sandbox per the settings."""
    from core.graders.base import GraderTools
    from core.graders.judge import InferenceJudge, ServiceCaller
    from core.settings import get_settings

    settings = get_settings()

    def resolve(model: str) -> Any:
        from core.persistence.db import session_scope
        from core.persistence.models import Job
        from core.registry import get_usable_model

        with session_scope(settings.resolved_database_url) as session:
            job = session.get(Job, ctx.job_id)
            org_id = job.organization_id if job is not None else ""
            row = get_usable_model(session, org_id, model)
            session.expunge(row)
            return row

    return GraderTools(judge=InferenceJudge(resolve, ServiceCaller(settings)), settings=settings)


def _grader_reward(
    spec: dict, examples: list, param: str, reporter: Any = None, tools: Any = None
) -> tuple[Reward, str]:
    """Grades within core.graders.budget: a batch in which some rows ran over their budget
    (and scored 0), or whose judge or python grader failed (scored 0), is a warning event;
    the job's budget spent fails the job."""
    from core.graders import (
        GraderError,
        GradingBudget,
        GradingBudgetExceeded,
        check_item,
        make_reward_fn,
        parse_grader,
    )
    from core.graders.base import GraderTools
    from core.graders.grade import bind, leaves

    grader = parse_grader(spec)  # validated at job creation; parsing again cannot fail
    bind(grader, tools or GraderTools())
    for leaf in leaves(grader):
        for field in getattr(leaf, "ignored", list)():
            if reporter is not None:
                reporter.message(
                    f"{param}.grader ({leaf.name}): {field} has no meaning for open models; "
                    "ignored",
                    level="warn",
                    data={"ignored_grader_field": field, "grader": leaf.name},
                )
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
        before, errors_before = budget.overruns, score.errors  # type: ignore[attr-defined]
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
        failed = score.errors - errors_before  # type: ignore[attr-defined]
        if failed and reporter is not None:
            reporter.message(
                f"{failed} of {len(completions)} completions could not be graded and scored "
                f"0: {score.last_error}",  # type: ignore[attr-defined]
                level="warning",
                data={"grader_errors": score.errors, "graded": budget.rows},  # type: ignore[attr-defined]
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
