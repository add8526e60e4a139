"""Prompt- and prefix-tuned adapters generate with their soft prompt, once (core.adapters.compat).

Without the fix, transformers 5 + peft 0.21 served a prefix-tuned model as the bare base and
prepended a prompt-tuned model's soft prompt again at every generated token. The reference is
greedy decoding with one full forward pass per token (no KV cache, no `generate()`).
"""

from __future__ import annotations

import pytest
import torch

from core.adapters import load_for_inference, load_for_training, save_artifact
from core.jobspec.job import AdapterSpec

N_TOKENS = 8


def _prompt(tokenizer) -> torch.Tensor:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]


def _greedy_by_forward(model, ids: torch.Tensor) -> list[int]:
    with torch.no_grad():
        for _ in range(N_TOKENS):
            token = model(input_ids=ids).logits[0, -1].argmax().view(1, 1)
            ids = torch.cat([ids, token], dim=1)
    return ids[0, -N_TOKENS:].tolist()


def _generated(model, ids: torch.Tensor) -> list[int]:
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=N_TOKENS,
        min_new_tokens=N_TOKENS,
        pad_token_id=0,
    )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("adapter_type", ["prompt_tuning", "prefix_tuning"])
def test_served_soft_prompt_generates_what_its_forward_pass_predicts(
    adapter_type, tiny_llama, tmp_path
) -> None:
    torch.manual_seed(0)
    spec = AdapterSpec(type=adapter_type, num_virtual_tokens=6)
    model, tokenizer = load_for_training(tiny_llama, spec)
    with torch.no_grad():  # an untrained soft prompt is small: make it matter
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0.0, 1.0)
    save_artifact(model, tokenizer, spec, tmp_path)
    served = load_for_inference(tiny_llama, tmp_path)
    ids = _prompt(tokenizer)

    expected = _greedy_by_forward(served, ids)
    assert _generated(served, ids) == expected
    with served.disable_adapter():  # and the soft prompt does change the answer
        assert _greedy_by_forward(served.get_base_model(), ids) != expected
