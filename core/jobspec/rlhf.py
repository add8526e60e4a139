"""The method blocks of preference and RL training: `dpo`, `reward_model`, `ppo`, `grpo`.

Shapes follow OpenAI's (`{"type": "dpo", "dpo": {"hyperparameters": {"beta": ...}}}`); every
tunable is `"auto"` by default and resolved by `core.training.auto.resolve_rlhf` at run time,
from the defaults of the method's paper:

- DPO: Rafailov et al. 2023, https://arxiv.org/abs/2305.18290 (beta 0.1).
- Reward model: Ouyang et al. 2022 (InstructGPT), https://arxiv.org/abs/2203.02155 (pairwise
  loss, one epoch); reward centring from Eisenstein et al. 2023, https://arxiv.org/abs/2312.09244.
- PPO: Huang et al. 2024, "The N+ Implementation Details of RLHF with PPO",
  https://arxiv.org/abs/2403.17031 (see core.rlhf.ppo_config).
- GRPO: Shao et al. 2024 (DeepSeekMath), https://arxiv.org/abs/2402.03300 (beta 0.04,
  epsilon 0.2, one policy update per generation batch).

`reward_model` fields name a Lathe reward model (`ft:...` made by a `reward_model` job) or, in
a pipeline, a job id whose output it will be; `grader` is an OpenAI grader object, parsed by
core.graders when the job is created.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.jobspec import bounds as mx
from core.jobspec.bounds import auto_float, auto_int, bounded_float, bounded_int
from core.jobspec.grader_limits import check_nesting

Auto = Literal["auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _RateHyperparameters(_Strict):
    """The knobs every method in this module has."""

    learning_rate_multiplier: auto_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        "auto", description="Scales the method's default learning rate (OpenAI's knob)."
    )
    learning_rate: auto_float(0, mx.MAX_LEARNING_RATE, open_low=True) = Field(
        "auto",
        description="Absolute learning rate; overrides the multiplier. 'auto': the "
        "adapter's SFT rate times the method's factor (DPO 0.05, reward model 0.5, PPO 0.15, "
        "GRPO 0.05: the papers' full-model rates against SFT's).",
    )
    seed: auto_int(0, mx.MAX_SEED) = Field("auto", description="'auto': the job's seed.")
    checkpoint_interval: bounded_int(1, mx.MAX_STEPS) | Literal["epoch"] | Auto = Field(
        "auto",
        description="Steps between checkpoints (servable, with the resume state), or 'epoch'; "
        "'auto': every epoch for DPO and reward models, every tenth of the steps for PPO and "
        "GRPO (at most 10 per run). The latest few are kept (LATHE_MAX_CHECKPOINTS).",
    )


class PreferenceHyperparameters(_RateHyperparameters):
    """Offline training on preference pairs (DPO, reward models): the optimizer's knobs."""

    n_epochs: auto_int(1, mx.MAX_EPOCHS) = Field(
        "auto",
        description="Passes over the pairs; 'auto': 1 for reward models (InstructGPT), "
        "else OpenAI's rule (3, more for tiny sets).",
    )
    batch_size: auto_int(1, mx.MAX_BATCH_SIZE) = Field(
        "auto", description="Preference pairs per optimizer step; 'auto': ~0.2% of the pairs, 1-32."
    )
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] | Auto = Field(
        "auto", description="Fraction of the steps over which the rate warms up; 'auto': 0.1."
    )
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] | Auto = Field(
        "auto", description="'auto': linear decay."
    )
    weight_decay: auto_float(0, mx.MAX_FACTOR) = Field("auto", description="'auto': 0.")
    gradient_accumulation_steps: auto_int(1, mx.MAX_BATCH_SIZE) = Field(
        "auto", description="'auto': 1."
    )
    max_seq_length: auto_int(8, mx.MAX_SEQ_LENGTH) = Field(
        "auto",
        description="Tokens of prompt + completion; longer pairs are truncated (DPO) or "
        "dropped (reward model). 'auto': 1024.",
    )


class DpoHyperparameters(PreferenceHyperparameters):
    beta: auto_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        "auto",
        description="Strength of the implicit KL constraint to the reference model; "
        "higher stays closer. 'auto': 0.1 (DPO paper).",
    )
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        "sigmoid",
        description="sigmoid: the DPO paper's loss; ipo: Azar et al. 2023; hinge: "
        "SLiC; robust: Chowdhury et al. 2024 (noisy labels, uses label_smoothing).",
    )
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] = Field(
        0.0, description="Assumed probability that a preference label is flipped (cDPO/robust)."
    )


class RewardModelHyperparameters(PreferenceHyperparameters):
    center_rewards_coefficient: bounded_float(0, mx.MAX_FACTOR) | None = Field(
        None,
        description="Weight of a penalty pulling mean rewards to 0 (Eisenstein et al. "
        "suggest 0.01); None: off.",
    )


class OnlineHyperparameters(_RateHyperparameters):
    """Online RL (PPO, GRPO): sample from the policy, score, update."""

    n_epochs: auto_int(1, mx.MAX_EPOCHS) = Field(
        "auto", description="Passes over the prompts; 'auto': 1."
    )
    total_steps: auto_int(1, mx.MAX_STEPS) = Field(
        "auto",
        description="Policy updates (rollout batches); overrides n_epochs. 'auto': "
        "n_epochs x prompts / batch_size.",
    )
    batch_size: auto_int(1, mx.MAX_BATCH_SIZE) = Field(
        "auto", description="Prompts per step; 'auto': min(64, number of prompts)."
    )
    max_new_tokens: auto_int(1, mx.MAX_NEW_TOKENS) = Field(
        "auto", description="Completion length cap; 'auto': 53 for PPO (N+ TL;DR), 256 for GRPO."
    )
    temperature: auto_float(0, mx.MAX_TEMPERATURE, open_low=True) = Field(
        "auto", description="Sampling temperature; 'auto': 0.7 for PPO (N+), 1.0 for GRPO."
    )
    max_seq_length: auto_int(8, mx.MAX_SEQ_LENGTH) = Field(
        "auto", description="Prompt tokens kept (from the end); 'auto': 1024."
    )


class PpoHyperparameters(OnlineHyperparameters):
    kl_coef: auto_float(0, mx.MAX_FACTOR) = Field(
        "auto",
        description="Weight of the per-token KL penalty to the reference (starting) "
        "model; 'auto': 0.05 (N+).",
    )
    mini_batch_size: auto_int(1, mx.MAX_BATCH_SIZE) = Field(
        "auto", description="Rollouts per optimizer step; 'auto': a quarter of batch_size."
    )
    ppo_epochs: bounded_int(1, mx.MAX_INNER_EPOCHS) = Field(
        4, description="PPO passes over each rollout batch."
    )
    cliprange: bounded_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        0.2, description="Policy ratio clip epsilon."
    )
    cliprange_value: bounded_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        0.2, description="Value update clip around old."
    )
    vf_coef: bounded_float(0, mx.MAX_FACTOR) = Field(0.1, description="Weight of the value loss.")
    gamma: Annotated[float, Field(ge=0, le=1)] = Field(1.0, description="Discount.")
    lam: Annotated[float, Field(ge=0, le=1)] = Field(0.95, description="GAE lambda.")
    whiten_rewards: bool = Field(False, description="Whiten per-token rewards before GAE.")
    missing_eos_penalty: bounded_float(-mx.MAX_FACTOR, mx.MAX_FACTOR) | None = Field(
        None, description="Subtracted from the score of completions that never end."
    )


class GrpoHyperparameters(OnlineHyperparameters):
    beta: auto_float(0, mx.MAX_FACTOR) = Field(
        "auto",
        description="KL coefficient to the reference (starting) model; 'auto': 0.04 "
        "(DeepSeekMath); 0 skips the reference entirely.",
    )
    num_generations: bounded_int(2, mx.MAX_NUM_GENERATIONS) = Field(
        8, description="Completions sampled per prompt: the group rewards are normalised in."
    )
    epsilon: bounded_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        0.2, description="Policy ratio clip epsilon."
    )
    num_iterations: bounded_int(1, mx.MAX_INNER_EPOCHS) = Field(
        1, description="Policy updates per generation batch (mu in the paper)."
    )
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field(
        "grpo",
        description="grpo: the paper's per-sequence normalisation; dapo / dr_grpo: "
        "length-unbiased variants (TRL's docs discuss the trade-offs).",
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Divide advantages by the group's (paper), the batch's or no std."
    )


class _RewardSource(_Strict):
    """Online methods score completions with exactly one of a grader or a reward model."""

    grader: dict[str, Any] | None = Field(
        None,
        description="An OpenAI grader: string_check, text_similarity, regex, "
        "json_schema or multi; templates may read {{item.<field>}} of the prompt's row.",
    )
    reward_model: str | None = Field(
        None, description="A Lathe reward model id (or, in a pipeline, its job id / $stage)."
    )

    @field_validator("grader", mode="before")
    @classmethod
    def _bounded_grader(cls, value: Any) -> Any:
        """Depth and size first (core.graders checks the rest at job creation): a grader
        nested 400 deep must be a 400 here, not a RecursionError when the spec is copied."""
        check_nesting(value)
        return mx.check_json_depth(value)

    @model_validator(mode="after")
    def _one_source(self) -> _RewardSource:
        if (self.grader is None) == (self.reward_model is None):
            raise ValueError("give exactly one of 'grader' or 'reward_model'")
        return self


class DpoMethod(_Strict):
    hyperparameters: DpoHyperparameters = DpoHyperparameters()


class RewardModelMethod(_Strict):
    hyperparameters: RewardModelHyperparameters = RewardModelHyperparameters()


class PpoMethod(_RewardSource):
    hyperparameters: PpoHyperparameters = PpoHyperparameters()


class GrpoMethod(_RewardSource):
    hyperparameters: GrpoHyperparameters = GrpoHyperparameters()


RLHF_BLOCKS: dict[str, type[BaseModel]] = {
    "dpo": DpoMethod,
    "reward_model": RewardModelMethod,
    "ppo": PpoMethod,
    "grpo": GrpoMethod,
}
"""method.type → its block's class; ppo and grpo have no default (they need a reward source)."""
