"""Per-example SDPA over packed rows computes what transformers' masked SDPA computes: the same
logits and gradients, each example attending only to itself (the tiny Llama has GQA)."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from core.training.packed_attention import NAME, use_packed_attention

LENGTHS = [7, 30, 1, 22]


def _packed_batch() -> dict:
    torch.manual_seed(0)
    ids = torch.randint(5, 500, (1, sum(LENGTHS)))
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], dtype=torch.int32)
    # what TRL's padding-free collator passes
    return {
        "input_ids": ids,
        "labels": ids.clone(),
        "use_cache": False,
        "position_ids": torch.cat([torch.arange(n) for n in LENGTHS])[None],
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": max(LENGTHS),
        "max_length_k": max(LENGTHS),
    }


def _forward_backward(model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    out = model(**batch)
    out.loss.backward()
    return out.logits.detach(), [p.grad.clone() for p in model.parameters()]


def test_same_logits_and_gradients_as_masked_sdpa(tiny_model) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    batch = _packed_batch()
    ref_logits, ref_grads = _forward_backward(model, batch)
    use_packed_attention(model)
    assert model.config._attn_implementation == NAME
    logits, grads = _forward_backward(model, batch)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref, atol=1e-5, rtol=1e-4)
    # and each example saw only itself: its logits are those of the example alone
    start = LENGTHS[0]
    alone = model(input_ids=batch["input_ids"][:, start : start + LENGTHS[1]]).logits
    torch.testing.assert_close(
        logits[:, start : start + LENGTHS[1]], alone.detach(), atol=1e-5, rtol=1e-5
    )


def test_inputs_without_boundaries_use_masked_sdpa(tiny_model) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    prompt = torch.tensor([[5, 6, 7, 8]])
    expected = model.generate(input_ids=prompt, max_new_tokens=5, do_sample=False, pad_token_id=0)
    use_packed_attention(model)
    got = model.generate(input_ids=prompt, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert got.tolist() == expected.tolist()
