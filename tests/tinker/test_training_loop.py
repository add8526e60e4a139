"""The real `tinker` SDK against a running Lathe on the builtin tiny Llama: the loss of a
training loop falls and equals, step for step, the same LoRA + AdamW computed locally."""

from __future__ import annotations

import numpy as np
import pytest
import torch

BASE = "tiny-llama"
ADAM = dict(learning_rate=5e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.01)


def _datum(tokens: list[int]):
    import tinker

    return tinker.Datum(
        model_input=tinker.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": np.array(tokens[1:], dtype=np.int64),
            "weights": np.ones(len(tokens) - 1, dtype=np.float32),
        },
    )


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _local_losses(tiny_model, tokens: list[int], steps: int, seed: int) -> list[float]:
    """The same steps with peft + torch.optim.AdamW in this process."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from core.tinker.lora_pool import adapter_name

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    cfg = LoraConfig(
        r=4,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
            "lm_head",
        ],
    )
    torch.manual_seed(seed)
    model = get_peft_model(model, cfg, adapter_name=adapter_name("x"))
    params = [p for _, p in sorted(model.named_parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=ADAM["learning_rate"], betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01
    )
    ids = torch.tensor([tokens[:-1]])
    target = torch.tensor([tokens[1:]])
    losses = []
    for _ in range(steps):
        lp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
        loss = -lp.gather(-1, target[..., None]).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    return losses


def test_loss_falls_and_matches_local_torch(service, tokenizer, tiny_model):
    import tinker

    tokens = tokenizer.encode("The capital of France is Paris. The answer is 42.")
    client = service.create_lora_training_client(base_model=BASE, rank=4, seed=7)
    losses = []
    for _ in range(4):
        fb = client.forward_backward([_datum(tokens)], "cross_entropy").result()
        client.optim_step(tinker.AdamParams(**ADAM)).result()
        losses.append(fb.metrics["loss:sum"])
        assert len(fb.loss_fn_outputs[0]["logprobs"].tolist()) == len(tokens) - 1
    assert losses[-1] < losses[0] * 0.8
    expected = _local_losses(tiny_model, tokens, 4, seed=7)
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
