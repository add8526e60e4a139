"""The critic: a linear head on the policy's last hidden state.

Sharing the policy's trunk (as trl's PPO did) keeps a LoRA run at one model copy; the head is
zero-initialised so the first values are 0 and early advantages are just the rewards.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ValueHead(nn.Module):
    """Maps hidden states [batch, seq, hidden] to scalar values [batch, seq]."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden_states: Tensor) -> Tensor:
        hidden_states = hidden_states.to(self.summary.weight.dtype)
        return self.summary(hidden_states).squeeze(-1)


def hidden_size_of(model: nn.Module) -> int:
    """The width of `model`'s last hidden state (works through peft wrappers)."""
    config = model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    text_config = getattr(config, "text_config", None)
    if text_config is not None and isinstance(getattr(text_config, "hidden_size", None), int):
        return text_config.hidden_size
    raise ValueError("cannot tell the model's hidden size from its config")


def make_value_head(model: nn.Module) -> ValueHead:
    """A float32 value head on the policy's device."""
    device = next(model.parameters()).device
    return ValueHead(hidden_size_of(model)).to(device=device, dtype=torch.float32)
