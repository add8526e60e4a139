"""make_optimizer: which optimizer, over which parameters, with which weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.adapters import make_optimizer
from core.adapters.quantization import qlora_unavailable_reason
from core.jobspec.job import AdapterSpec


def _mlp() -> nn.Module:
    model = nn.Sequential(nn.Linear(64, 128), nn.LayerNorm(128), nn.Linear(128, 4))
    model[2].requires_grad_(False)  # frozen: must not reach the optimizer
    return model


def test_adamw_over_trainable_params_without_decay_on_1d() -> None:
    model = _mlp()
    optimizer = make_optimizer(model, AdapterSpec(type="lora"), lr=1e-3, weight_decay=0.1)
    assert type(optimizer) is torch.optim.AdamW
    decayed, plain = optimizer.param_groups
    assert [p.shape for p in decayed["params"]] == [torch.Size([128, 64])]
    assert decayed["weight_decay"] == 0.1
    assert len(plain["params"]) == 3 and plain["weight_decay"] == 0.0  # bias, norm weight+bias
    assert all(group["lr"] == 1e-3 for group in optimizer.param_groups)


def test_qlora_uses_8bit_adamw_with_8bit_state() -> None:
    if reason := qlora_unavailable_reason("cpu"):
        pytest.skip(f"bitsandbytes cannot run here: {reason}")
    from bitsandbytes.optim import AdamW8bit

    model = _mlp()
    optimizer = make_optimizer(model, AdapterSpec(type="qlora"), lr=1e-2, weight_decay=0.0)
    assert isinstance(optimizer, AdamW8bit)  # unpaged on CPU: paging needs CUDA
    x, target = torch.randn(8, 64), torch.randn(8, 128)
    losses = []
    for _ in range(5):
        loss = ((model[1](model[0](x)) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # bnb keeps 8-bit state for tensors of >= 4096 elements (the 64x128 weight).
    assert optimizer.state[model[0].weight]["state1"].dtype == torch.uint8


def test_nothing_to_train_is_an_error() -> None:
    model = nn.Linear(4, 4).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        make_optimizer(model, AdapterSpec(type="lora"), lr=1e-3, weight_decay=0.0)
