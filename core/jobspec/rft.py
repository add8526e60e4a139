"""OpenAI's reinforcement fine-tuning block, run on Lathe's GRPO.

    {"type": "reinforcement", "reinforcement": {"grader": {...}, "hyperparameters": {
        "n_epochs", "batch_size", "learning_rate_multiplier", "compute_multiplier",
        "eval_interval", "eval_samples", "reasoning_effort"}}}

The job keeps the block as the client sent it (its job object reads back as OpenAI's);
`to_grpo()` is the GrpoMethod the worker trains with, and `ignored()` the hyperparameters that
cannot change what GRPO does, each reported as a job event rather than dropped silently:

- n_epochs, batch_size, learning_rate_multiplier: GRPO's own (passes over the prompts, prompts
  per policy update, the scale of GRPO's default rate).
- compute_multiplier: completions sampled per prompt, num_generations = 8 x multiplier
  (GRPO's group size is its exploration budget), between 2 and MAX_NUM_GENERATIONS.
- eval_interval, eval_samples: Lathe's GRPO runs no evaluation during training (its metrics
  events report the training reward every step); accepted and reported as ignored.
- reasoning_effort: open models have no reasoning-effort setting; accepted and reported.

Lathe's GRPO knobs (`beta`, `max_new_tokens`, `temperature`, `total_steps`, ...) are
accepted beside OpenAI's, and `reward_model` beside `grader`, as in `method.grpo`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.jobspec import bounds as mx
from core.jobspec.bounds import auto_float, auto_int
from core.jobspec.rlhf import GrpoHyperparameters, GrpoMethod, _RewardSource

BASE_GENERATIONS = 8
"""GRPO's default group size: what compute_multiplier 1 (and "auto") samples per prompt."""
MIN_COMPUTE = 2 / BASE_GENERATIONS
MAX_COMPUTE = mx.MAX_NUM_GENERATIONS / BASE_GENERATIONS
OPENAI_ONLY = ("compute_multiplier", "eval_interval", "eval_samples", "reasoning_effort")


class ReinforcementHyperparameters(GrpoHyperparameters):
    num_generations: auto_int(2, mx.MAX_NUM_GENERATIONS) = Field(
        "auto",
        description="Lathe: completions per prompt, instead of compute_multiplier; 'auto': "
        f"{BASE_GENERATIONS} x compute_multiplier.",
    )
    compute_multiplier: auto_float(MIN_COMPUTE, MAX_COMPUTE) = Field(
        "auto",
        description=f"Scales the completions sampled per prompt: num_generations = "
        f"{BASE_GENERATIONS} x compute_multiplier ({MIN_COMPUTE} to {MAX_COMPUTE}); 'auto': 1.",
    )
    eval_interval: auto_int(1, mx.MAX_STEPS) = Field(
        "auto", description="Accepted; ignored (reported): GRPO runs no evaluation in training."
    )
    eval_samples: auto_int(1, mx.MAX_NUM_GENERATIONS) = Field(
        "auto", description="Accepted; ignored (reported): GRPO runs no evaluation in training."
    )
    reasoning_effort: Literal["default", "low", "medium", "high"] | None = Field(
        None, description="Accepted; ignored (reported): open models have no such setting."
    )

    @model_validator(mode="after")
    def _one_group_size(self) -> ReinforcementHyperparameters:
        if self.compute_multiplier != "auto" and self.num_generations != "auto":
            raise ValueError("give compute_multiplier or num_generations, not both")
        return self

    def num_generations_for_compute(self) -> int:
        if self.num_generations != "auto":
            return self.num_generations
        multiplier = 1.0 if self.compute_multiplier == "auto" else self.compute_multiplier
        scaled = round(BASE_GENERATIONS * multiplier)
        return max(2, min(mx.MAX_NUM_GENERATIONS, scaled))


IGNORED_REASONS = {
    "eval_interval": "Lathe's GRPO runs no evaluation during training (metrics events "
    "report the training reward every step)",
    "eval_samples": "Lathe's GRPO runs no evaluation during training",
    "reasoning_effort": "reasoning_effort has no meaning for open models",
}


class ReinforcementMethod(_RewardSource):
    hyperparameters: ReinforcementHyperparameters = ReinforcementHyperparameters()

    def to_grpo(self) -> GrpoMethod:
        """The GRPO block this job trains with: OpenAI's knobs mapped, Lathe's passed on."""
        hp = self.hyperparameters
        grpo_hp = hp.model_dump(exclude=set(OPENAI_ONLY))
        grpo_hp["num_generations"] = hp.num_generations_for_compute()
        return GrpoMethod(
            grader=self.grader,
            reward_model=self.reward_model,
            hyperparameters=GrpoHyperparameters.model_validate(grpo_hp),
        )

    def ignored(self) -> dict[str, str]:
        """Hyperparameters given a value that GRPO cannot honour → why (for a job event)."""
        hp = self.hyperparameters
        return {
            name: reason
            for name, reason in IGNORED_REASONS.items()
            if getattr(hp, name) not in ("auto", None)
        }
