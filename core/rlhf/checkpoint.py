"""A PPO run's resume state: everything the next step depends on, so a resumed run continues
as if it had never stopped (on the CPU, bit for bit).

One directory per checkpoint:
- `policy.safetensors`: the policy's trainable parameters by name (the adapter, or every
  weight of a full fine-tune). The frozen reference is not saved: it is the starting model,
  which a re-run loads again;
- `value_head.safetensors`: the critic;
- `optimizer.pt`: AdamW's moments and step counts (policy and value head, in that order);
- `rng_state.pth`: torch's CPU (and CUDA) generators, which sampling and the minibatch
  shuffles draw from;
- `trainer_state.json`: the step and the metrics so far (`global_step`, `log_history`), named
  as the HF Trainer names its own, so the job's checkpoint store recognises the directory.

The prompt order needs nothing: it is replayed from its seed (`ppo._prompt_batches`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    from core.rlhf.ppo import PPOTrainer

STATE = "trainer_state.json"


def _trainable(trainer: PPOTrainer) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in trainer.policy.named_parameters() if p.requires_grad}


def _tensors(params: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous() for name, p in params.items()}


def save_state(trainer: PPOTrainer, history: list[dict], out: Path) -> Path:
    """Write `trainer`'s resume state (and the step metrics so far) to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    save_file(_tensors(_trainable(trainer)), str(out / "policy.safetensors"))
    head = dict(trainer.value_head.named_parameters())
    save_file(_tensors(head), str(out / "value_head.safetensors"))
    torch.save(trainer.optimizer.state_dict(), out / "optimizer.pt")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, out / "rng_state.pth")
    state = {"global_step": trainer.step_count, "log_history": history}
    (out / STATE).write_text(json.dumps(state))
    return out


def load_state(trainer: PPOTrainer, src: Path) -> list[dict]:
    """Restore what `save_state` wrote into a freshly built `trainer`; returns the history."""
    params, stored = _trainable(trainer), load_file(str(src / "policy.safetensors"))
    if set(params) != set(stored):
        raise ValueError(
            f"the checkpoint's {len(stored)} trainable tensors do not match the policy's "
            f"{len(params)}: it was saved by a run with another adapter"
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(stored[name])
        trainer.value_head.load_state_dict(load_file(str(src / "value_head.safetensors")))
    optimizer = torch.load(src / "optimizer.pt", map_location="cpu", weights_only=True)
    trainer.optimizer.load_state_dict(optimizer)
    rng = torch.load(src / "rng_state.pth", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = json.loads((src / STATE).read_text())
    trainer.step_count = state["global_step"]
    return state["log_history"]
