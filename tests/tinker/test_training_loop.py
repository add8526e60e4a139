"""The real `tinker` SDK against a running Lathe on the builtin tiny Llama: the loss of a
training loop falls and equals, step for step, the same LoRA + AdamW computed locally; the
tokenizer comes from Lathe; resuming from a saved state is exact."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

BASE = "tiny-llama"
ADAM = dict(learning_rate=5e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.01)
TEXT = "The capital of France is Paris. The answer is 42."


def datum(tokens: list[int], weights: np.ndarray | None = None):
    import tinker

    n = len(tokens) - 1
    return tinker.Datum(
        model_input=tinker.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": np.array(tokens[1:], dtype=np.int64),
            "weights": np.ones(n, dtype=np.float32) if weights is None else weights,
        },
    )


@pytest.fixture(scope="module")
def tokens(tiny_model) -> list[int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model).encode(TEXT)


@pytest.fixture(scope="module")
def local_losses(tiny_model, tokens) -> list[float]:
    """Four steps of the same LoRA (rank 4, alpha 32, every linear + lm_head, seed 7) with
    peft and torch.optim.AdamW in this process."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = LoraConfig(r=4, lora_alpha=32, target_modules=[*modules, "lm_head"])
    torch.manual_seed(7)
    model = get_peft_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
    ids, target = torch.tensor([tokens[:-1]]), torch.tensor([tokens[1:]])
    losses = []
    for _ in range(4):
        lp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
        loss = -lp.gather(-1, target[..., None]).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    return losses


def train(client, tokens: list[int], steps: int) -> list[float]:
    import tinker

    losses = []
    for _ in range(steps):
        fb = client.forward_backward([datum(tokens)], "cross_entropy").result()
        client.optim_step(tinker.AdamParams(**ADAM)).result()
        assert len(fb.loss_fn_outputs[0]["logprobs"].tolist()) == len(tokens) - 1
        losses.append(fb.metrics["loss:sum"])
    return losses


def test_loss_falls_and_matches_local_torch(service, tokens, local_losses):
    client = service.create_lora_training_client(base_model=BASE, rank=4, seed=7).result()
    losses = train(client, tokens, 4)
    assert losses[-1] < losses[0] * 0.8
    np.testing.assert_allclose(losses, local_losses, rtol=1e-4)


def test_two_organizations_train_at_once_without_crossing(connect, org_key, tokens, local_losses):
    """Two orgs on one base, in parallel: each gets exactly the losses it gets alone, and
    neither can reach the other's weights nor futures."""
    import tinker

    services = [connect(org_key()), connect(org_key())]
    clients = [
        s.create_lora_training_client(base_model=BASE, rank=4, seed=7).result() for s in services
    ]
    results: dict[int, list[float]] = {}

    def run(i: int) -> None:
        results[i] = train(clients[i], tokens, 4)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_allclose(results[i], local_losses, rtol=1e-4)
    path = clients[0].save_weights_for_sampler("mine").result().path
    with pytest.raises(tinker.NotFoundError, match="no checkpoint"):
        services[1].create_sampling_client(model_path=path).result()


def test_tokenizer_comes_from_lathe(tinker_url, stack, tokens, tmp_path):
    """`get_tokenizer()` in a fresh process whose only hub is Lathe (HF_ENDPOINT=<lathe>/hf)."""
    code = (
        "import tinker\n"
        f"s = tinker.ServiceClient(base_url={tinker_url!r}, api_key='{stack.key}')\n"
        f"c = s.create_lora_training_client(base_model={BASE!r}, rank=2).result()\n"
        f"print(c.get_tokenizer().encode({TEXT!r}))\n"
    )
    env = {**os.environ, "HF_ENDPOINT": f"{tinker_url}/hf", "HF_HOME": str(tmp_path)}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == str(tokens)


def test_resume_with_optimizer_is_exact(connect, org_key, tokens):
    service = connect(org_key())
    client = service.create_lora_training_client(base_model=BASE, rank=4, seed=3).result()
    train(client, tokens, 2)
    path = client.save_state("two").result().path
    assert path.endswith("/weights/two")
    uninterrupted = train(client, tokens, 1)
    resumed = service.create_training_client_from_state_with_optimizer(path).result()
    np.testing.assert_allclose(train(resumed, tokens, 1), uninterrupted, rtol=1e-5)
    # weights only: the same weights, a fresh AdamW, so the same loss but another step
    fresh = service.create_training_client_from_state(path).result()
    client.load_state_with_optimizer(path).result()
    again = train(client, tokens, 1)
    np.testing.assert_allclose(again, uninterrupted, rtol=1e-5)
    assert train(fresh, tokens, 1) == pytest.approx(uninterrupted, rel=1e-5)
