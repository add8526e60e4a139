"""QLoRA on CUDA as the paper runs it: NF4 base, bf16 compute, paged 8-bit AdamW (skipped
without a GPU; the CPU path is covered by the adapter and API tests)."""

from __future__ import annotations

import pytest
import torch

from core.adapters import load_for_inference, load_for_training, make_optimizer, save_artifact
from core.jobspec.job import AdapterSpec

pytestmark = pytest.mark.gpu


def test_qlora_trains_in_bf16_on_cuda_and_reloads_quantized(tiny_llama, tmp_path) -> None:
    import bitsandbytes as bnb
    from bitsandbytes.optim import PagedAdamW8bit

    spec = AdapterSpec(type="qlora", r=8, alpha=16, dropout=0.0)
    torch.manual_seed(0)
    model, tokenizer = load_for_training(tiny_llama, spec, device="cuda", bf16=True)
    four_bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert four_bit and all(m.compute_dtype == torch.bfloat16 for m in four_bit)
    assert all(m.weight.quant_type == "nf4" for m in four_bit)

    batch = tokenizer(
        ["What is the capital of France? The capital of France is Paris."], return_tensors="pt"
    ).to("cuda")
    optimizer = make_optimizer(model, spec, lr=3e-3, weight_decay=0.0)
    assert isinstance(optimizer, PagedAdamW8bit)
    losses = []
    for _ in range(20):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses

    save_artifact(model, tokenizer, spec, tmp_path)
    served = load_for_inference(tiny_llama, tmp_path, device="cuda", quantized=True)
    with torch.no_grad():
        reloaded = served(**batch, labels=batch["input_ids"]).loss.item()
    assert reloaded == pytest.approx(
        model.eval()(**batch, labels=batch["input_ids"]).loss.item(), rel=0.1
    )  # bf16 vs fp32 compute
