"""Online RL from a reward: PPO with a value head and a KL penalty to the reference policy.

    history = train_ppo(policy, tokenizer, prompts, reward_fn, PPOConfig(total_steps=100))

Imports torch; the API process must not import this package at start-up.
"""

from core.rlhf.ppo import Checkpointing, PPOTrainer, RewardFn, train_ppo
from core.rlhf.ppo_config import PPOConfig
from core.rlhf.value_head import ValueHead

__all__ = ["Checkpointing", "PPOConfig", "PPOTrainer", "RewardFn", "ValueHead", "train_ppo"]
