"""PPO hyperparameters, with defaults from the RLHF literature.

Sources: Ziegler et al. 2019 (https://arxiv.org/abs/1909.08593), Stiennon et al. 2020
(https://arxiv.org/abs/2009.01325) and Huang et al. 2024, "The N+ Implementation Details of
RLHF with PPO" (https://arxiv.org/abs/2403.17031), whose TL;DR recipe most defaults follow.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PPOConfig(BaseModel):
    """Everything `train_ppo` needs besides the model, the prompts and the reward."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(3e-6, gt=0, description="AdamW step size (N+: 3e-6 full model).")
    batch_size: int = Field(64, ge=1, description="Prompts per rollout (one PPO iteration).")
    mini_batch_size: int = Field(16, ge=1, description="Rollouts per optimizer step.")
    ppo_epochs: int = Field(4, ge=1, description="Passes of PPO updates over each rollout batch.")
    kl_coef: float = Field(0.05, ge=0, description="Weight of the per-token KL penalty to ref.")
    kl_estimator: Literal["k1", "k3"] = Field(
        "k1", description="k1: log p - log p_ref (papers); k3: Schulman's low-variance estimator."
    )
    gamma: float = Field(1.0, ge=0, le=1, description="Discount; 1 for episodic text.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda (bias/variance trade-off).")
    cliprange: float = Field(0.2, gt=0, description="Policy ratio clip epsilon.")
    cliprange_value: float = Field(0.2, gt=0, description="Clip of value updates around old.")
    vf_coef: float = Field(0.1, ge=0, description="Weight of the value loss in the total loss.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient norm clip; None: off.")
    max_new_tokens: int = Field(53, ge=1, description="Completion length cap (N+ TL;DR: 53).")
    temperature: float = Field(0.7, gt=0, description="Sampling temperature; logprobs use it too.")
    top_k: int = Field(0, ge=0, description="0 samples the full distribution (required by PPO).")
    whiten_rewards: bool = Field(False, description="Whiten per-token rewards before GAE.")
    missing_eos_penalty: float | None = Field(
        None, description="Subtracted from the score of completions that never emit EOS."
    )
    total_steps: int = Field(100, ge=1, description="PPO iterations (rollout batches) to run.")
    seed: int = Field(0, description="Seeds prompt order and sampling.")

    @model_validator(mode="after")
    def _minibatch_fits(self) -> PPOConfig:
        if self.mini_batch_size > self.batch_size:
            raise ValueError("mini_batch_size must not exceed batch_size")
        return self
