"""PPO for language models, as in Ziegler et al. 2019 (https://arxiv.org/abs/1909.08593) and
Stiennon et al. 2020 (https://arxiv.org/abs/2009.01325), with the implementation details of
Huang et al. 2024 (https://arxiv.org/abs/2403.17031). trl 1.x has no PPOTrainer, so it lives here.

One step, top to bottom:
1. sample a completion for each of `batch_size` prompts (`rollout.sample`);
2. score the completions with `reward_fn(prompts, completions)`;
3. with no grad, take the policy's log-probs and values and the reference's log-probs;
4. reward each token with -kl_coef * KL(policy || reference) and add the score at the last one;
5. GAE advantages and returns; whiten the advantages;
6. `ppo_epochs` passes over the batch in shuffled minibatches: clipped policy loss +
   vf_coef * clipped value loss, one AdamW step per minibatch.

A peft (LoRA) policy is its own reference with the adapter disabled, so no second copy of the
model is held; any other policy gets a frozen deep copy. Dropout is off throughout (the
model is in eval mode), so the rollout's log-probs are those the first update starts from.

`train_ppo` checkpoints every `Checkpointing.every` steps and, when a stop is a pause, at the
step it stopped on; given one of those states (`resume_from`) it continues from that step
(core.rlhf.checkpoint says what the state holds).
"""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from core.rlhf import losses
from core.rlhf.checkpoint import load_state, save_state
from core.rlhf.ppo_config import PPOConfig
from core.rlhf.rollout import Samples, decode_completions, forward, sample
from core.rlhf.value_head import make_value_head

RewardFn = Callable[[list[str], list[str]], list[float]]


def _is_peft(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


class PPOTrainer:
    """Holds the policy, value head, reference and optimizer; `step()` runs one PPO iteration."""

    def __init__(
        self,
        policy: nn.Module,
        tokenizer,
        reward_fn: RewardFn,
        config: PPOConfig,
        ref_model: nn.Module | None = None,
    ) -> None:
        torch.manual_seed(config.seed)  # sampling draws from torch's global generator
        self.policy, self.tokenizer = policy, tokenizer
        self.reward_fn, self.config = reward_fn, config
        self.policy.eval()  # no dropout: rollout and update must see the same function
        self.value_head = make_value_head(policy)
        if ref_model is None and not _is_peft(policy):
            ref_model = copy.deepcopy(policy)
        if ref_model is not None:
            ref_model.eval().requires_grad_(False)
        self.ref_model = ref_model
        params = [p for p in policy.parameters() if p.requires_grad]
        params += list(self.value_head.parameters())
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, eps=1e-5)
        self.step_count = 0

    def _reference_logprobs(self, samples: Samples) -> Tensor:
        """Log-probs under the frozen reference: the separate copy, or the policy with its
        adapter switched off."""
        if self.ref_model is not None:
            return forward(self.ref_model, samples, self.config.temperature)[0]
        with self.policy.disable_adapter():
            return forward(self.policy, samples, self.config.temperature)[0]

    @torch.no_grad()
    def _score_rollout(self, samples: Samples) -> dict[str, Tensor]:
        """Old log-probs, values, reference log-probs and entropy, in minibatch chunks."""
        cfg, parts = self.config, {"logprobs": [], "values": [], "ref": [], "entropy": []}
        batch = len(samples.response_ids)
        for start in range(0, batch, cfg.mini_batch_size):
            chunk = samples.select(torch.arange(start, min(start + cfg.mini_batch_size, batch)))
            logprobs, values, entropy = forward(
                self.policy, chunk, cfg.temperature, self.value_head, with_entropy=True
            )
            ref_logprobs = self._reference_logprobs(chunk)
            for key, value in zip(parts, (logprobs, values, ref_logprobs, entropy), strict=True):
                parts[key].append(value)
        return {key: torch.cat(value) for key, value in parts.items()}

    def step(self, prompts: list[str]) -> dict[str, float]:
        """One PPO iteration on `prompts` (already chat-rendered); returns its metrics."""
        cfg = self.config
        samples = sample(
            self.policy, self.tokenizer, prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_k
        )
        completions = decode_completions(self.tokenizer, samples)
        raw = [float(s) for s in self.reward_fn(prompts, completions)]
        if len(raw) != len(prompts) or not all(math.isfinite(s) for s in raw):
            raise ValueError("reward_fn must return one finite score per completion")
        device = samples.response_ids.device
        scores = torch.tensor(raw, dtype=torch.float32, device=device)
        if cfg.missing_eos_penalty is not None:
            scores = scores - cfg.missing_eos_penalty * (~samples.ended).float()

        old = self._score_rollout(samples)
        mask = samples.response_mask.float()
        kl = losses.kl_penalty(old["logprobs"], old["ref"], cfg.kl_estimator) * mask
        rewards, non_score = losses.per_token_rewards(scores, kl, mask, cfg.kl_coef)
        if cfg.whiten_rewards:
            rewards = losses.masked_whiten(rewards, mask, shift_mean=False)
        advantages, returns = losses.compute_advantages(
            rewards, old["values"], mask, cfg.gamma, cfg.lam
        )
        advantages = losses.masked_whiten(advantages, mask)

        stats = self._update(samples, old, advantages, returns, mask)
        self.step_count += 1
        return {
            "step": self.step_count,
            "mean_reward": sum(raw) / len(raw),
            "kl": kl.sum(dim=1).mean().item(),
            "entropy": losses.masked_mean(old["entropy"], mask).item(),
            "non_score_reward": non_score.sum(dim=1).mean().item(),
            "completion_length": mask.sum(dim=1).mean().item(),
            **stats,
        }

    def _update(
        self,
        samples: Samples,
        old: dict[str, Tensor],
        advantages: Tensor,
        returns: Tensor,
        mask: Tensor,
    ) -> dict[str, float]:
        cfg, batch = self.config, len(samples.response_ids)
        totals = {
            "policy_loss": 0.0,
            "value_loss": 0.0,
            "clipfrac": 0.0,
            "approx_kl": 0.0,
            "value_clipfrac": 0.0,
        }
        n_updates = 0
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(batch, device=advantages.device)
            for start in range(0, batch, cfg.mini_batch_size):
                idx = order[start : start + cfg.mini_batch_size]
                logprobs, values, _ = forward(
                    self.policy, samples.select(idx), cfg.temperature, self.value_head
                )
                pg_loss, clipfrac, approx_kl = losses.policy_loss(
                    logprobs, old["logprobs"][idx], advantages[idx], mask[idx], cfg.cliprange
                )
                vf_loss, vf_clipfrac = losses.value_loss(
                    values, old["values"][idx], returns[idx], mask[idx], cfg.cliprange_value
                )
                self.optimizer.zero_grad(set_to_none=True)
                (pg_loss + cfg.vf_coef * vf_loss).backward()
                if cfg.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                for key, value in zip(
                    totals, (pg_loss, vf_loss, clipfrac, approx_kl, vf_clipfrac), strict=True
                ):
                    totals[key] += value.item()
                n_updates += 1
        return {key: value / n_updates for key, value in totals.items()}


def _prompt_batches(n: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless batches of prompt indices: a fresh shuffle per pass, wrapping across passes."""
    generator = torch.Generator().manual_seed(seed)
    pending: list[int] = []
    while True:
        while len(pending) < batch_size:
            pending += torch.randperm(n, generator=generator).tolist()
        yield pending[:batch_size]
        pending = pending[batch_size:]


@dataclass
class Checkpointing:
    """When train_ppo saves its resume state, and where it hands it."""

    every: int
    """Steps between checkpoints."""
    save: Callable[[int, Path], None]
    """(step, resume state directory): store it; the directory is removed afterwards."""
    work_dir: Path
    pausing: Callable[[], bool] = lambda: False
    """Asked once `should_stop` said stop: True saves the current step first (a pause)."""


def _checkpoint(trainer: PPOTrainer, history: list[dict], checkpointing: Checkpointing) -> None:
    step = trainer.step_count
    state = save_state(trainer, history, checkpointing.work_dir / f"checkpoint-{step}")
    checkpointing.save(step, state)
    shutil.rmtree(state, ignore_errors=True)


def train_ppo(
    policy: nn.Module,
    tokenizer,
    prompts: list[str],
    reward_fn: RewardFn,
    config: PPOConfig,
    on_step: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpointing: Checkpointing | None = None,
    resume_from: Path | None = None,
) -> list[dict]:
    """Run PPO iterations up to `config.total_steps`; the policy is trained in place. Returns
    every step's metrics, those before `resume_from` included.

    `prompts` are chat-rendered strings (tokenized without extra special tokens);
    `reward_fn(prompts, completions)` returns one float per completion. `on_step` receives each
    new step's metrics; `should_stop` is polled before each step (cancel / pause)."""
    if not prompts:
        raise ValueError("PPO needs at least one prompt")
    trainer = PPOTrainer(policy, tokenizer, reward_fn, config)  # the reference: the start
    history = load_state(trainer, resume_from) if resume_from is not None else []
    batches = _prompt_batches(len(prompts), config.batch_size, config.seed)
    for _ in range(trainer.step_count):  # the prompt order is replayed from its seed
        next(batches)
    saved = trainer.step_count
    while trainer.step_count < config.total_steps:
        if should_stop is not None and should_stop():
            if checkpointing and checkpointing.pausing() and trainer.step_count > saved:
                _checkpoint(trainer, history, checkpointing)
            break
        metrics = trainer.step([prompts[i] for i in next(batches)])
        history.append(metrics)
        if on_step is not None:
            on_step(metrics)
        if checkpointing and trainer.step_count % checkpointing.every == 0:
            _checkpoint(trainer, history, checkpointing)
            saved = trainer.step_count
    return history
