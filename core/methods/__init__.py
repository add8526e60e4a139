"""The closed registry of methods: `method.type` → the module whose recipe runs it (training
methods, and `eval`, which scores a model and trains nothing).

Modules are imported on use, so the API (which only needs the names) never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from core.jobspec.recipe import TrainingContext, TrainingResult

METHODS: dict[str, str] = {
    "supervised": "core.methods.supervised",
    "classification": "core.methods.classification",
    "dpo": "core.methods.dpo",
    "reward_model": "core.methods.reward_model",
    "ppo": "core.methods.ppo",
    "grpo": "core.methods.grpo",
    "distillation": "core.methods.distillation",
    "reinforcement": "core.methods.reinforcement",
    "eval": "core.methods.eval",
}

SCORES_ONLY = frozenset({"eval"})
"""Methods that train nothing: their `training_file` is a task file (purpose 'evals') the
runner downloads for them (`TrainingContext.task_files`), and their result carries no model
(`model_task` None): the job succeeds with its `evaluation` alone (core.runs.publish)."""

MERGED_START = frozenset({"dpo", "reward_model", "ppo", "grpo", "reinforcement"})
"""Methods that start from an `ft:` model by merging it into its weights first: their new
adapter applies to the merged model, which is also their reference policy (or, for a reward
model, the backbone under a new head). The artifact records that parent (core.model_store)."""


RESUMABLE = frozenset(
    {"supervised", "classification", "dpo", "reward_model", "ppo", "grpo", "reinforcement"}
)
"""Methods whose runs save checkpoints with their resume state (the TRL-trainer ones through
ScheduleCallback, PPO through core.rlhf.checkpoint), so a paused, preempted or crashed job
continues at the step it stopped; a method outside it cannot be paused (core.jobs.service)."""


def get_method(name: str) -> Callable[[TrainingContext], TrainingResult]:
    return importlib.import_module(METHODS[name]).run
