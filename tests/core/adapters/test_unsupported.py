"""Methods that cannot run somewhere fail loudly with AdapterUnsupported, never fall back."""

from __future__ import annotations

import sys

import pytest
from transformers import AutoTokenizer

from core.adapters import AdapterUnsupported, load_for_training
from core.adapters.quantization import qlora_unavailable_reason
from core.adapters.training import ensure_pad_token
from core.jobspec.job import AdapterSpec


@pytest.fixture
def no_bitsandbytes(monkeypatch):
    """Make `import bitsandbytes` fail, as on a machine without it."""
    qlora_unavailable_reason.cache_clear()
    for name in [m for m in sys.modules if m == "bitsandbytes" or m.startswith("bitsandbytes.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    yield
    qlora_unavailable_reason.cache_clear()


def test_qlora_without_bitsandbytes(no_bitsandbytes, tiny_llama) -> None:
    with pytest.raises(AdapterUnsupported, match="qlora is not available.*bitsandbytes"):
        load_for_training(tiny_llama, AdapterSpec(type="qlora"))


def test_qlora_on_a_device_bnb_cannot_use(tiny_llama) -> None:
    with pytest.raises(AdapterUnsupported, match="'meta'"):
        load_for_training(tiny_llama, AdapterSpec(type="qlora"), device="meta")


def test_prefix_tuning_for_classification(tiny_llama) -> None:
    spec = AdapterSpec(type="prefix_tuning")
    with pytest.raises(AdapterUnsupported, match="prefix_tuning.*classification"):
        load_for_training(tiny_llama, spec, task="seq_cls", num_labels=2)


def test_prefix_tuning_with_gradient_checkpointing(tiny_llama) -> None:
    spec = AdapterSpec(type="prefix_tuning")
    with pytest.raises(AdapterUnsupported, match="gradient checkpointing"):
        load_for_training(tiny_llama, spec, gradient_checkpointing=True)


def test_lora_with_gradient_checkpointing_trains(tiny_llama) -> None:
    model, tokenizer = load_for_training(
        tiny_llama, AdapterSpec(type="lora"), gradient_checkpointing=True
    )
    assert model.base_model.model.is_activation_checkpointing
    batch = tokenizer(["The capital of France"], return_tensors="pt")
    model(**batch, labels=batch["input_ids"]).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_seq_cls_needs_num_labels(tiny_llama) -> None:
    with pytest.raises(ValueError, match="num_labels"):
        load_for_training(tiny_llama, AdapterSpec(type="lora"), task="seq_cls")


def test_pad_token_falls_back_to_eos(tiny_llama) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = None
    ensure_pad_token(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token


def test_prompt_tuning_starts_from_the_init_text(tiny_llama) -> None:
    text = "Please answer the question."
    spec = AdapterSpec(type="prompt_tuning", num_virtual_tokens=12, prompt_tuning_init_text=text)
    model, tokenizer = load_for_training(tiny_llama, spec)
    ids = tokenizer(text)["input_ids"]
    prompt = model.prompt_encoder["default"].embedding.weight
    words = model.get_input_embeddings().weight[ids]
    assert prompt.shape[0] == 12
    assert prompt[: len(ids)].detach().equal(words.detach())
