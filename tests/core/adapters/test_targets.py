"""target_modules resolution on small in-memory models of each family (no weights on disk)."""

from __future__ import annotations

import pytest
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from core.adapters import resolve_target_modules
from core.adapters.targets import resolve_ia3_modules

LLAMA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def llama() -> nn.Module:
    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1,
    )  # fmt: skip
    return LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def bert() -> nn.Module:
    config = BertConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_labels=2,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def test_llama_auto_is_attention_and_mlp(llama) -> None:
    assert resolve_target_modules(llama, "auto") == LLAMA_PROJECTIONS


def test_bert_auto_excludes_classifier(bert) -> None:
    resolved = resolve_target_modules(bert, "auto")
    assert resolved == ["query", "key", "value", "dense"]
    assert "classifier" not in resolved


def test_gpt2_auto_covers_conv1d_projections() -> None:
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2))
    assert resolve_target_modules(model, "auto") == ["c_attn", "c_proj", "c_fc"]


def test_unknown_architecture_falls_back_to_linear_layers_without_head() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = type("Config", (), {"model_type": "odd"})()
            self.mixer = nn.Linear(8, 8)
            self.block = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
            self.lm_head = nn.Linear(8, 32)

        def get_output_embeddings(self) -> nn.Module:
            return self.lm_head

    assert resolve_target_modules(Odd(), "auto") == ["0", "mixer"]


def test_all_linear_passes_through(llama) -> None:
    assert resolve_target_modules(llama, "all-linear") == "all-linear"


def test_explicit_list_is_validated(llama, bert) -> None:
    assert resolve_target_modules(llama, ["q_proj", "v_proj"]) == ["q_proj", "v_proj"]
    assert resolve_target_modules(bert, ["attention.self.query"]) == ["attention.self.query"]


def test_unknown_name_is_named_in_the_error(llama) -> None:
    with pytest.raises(ValueError, match=r"\['qkv'\] not found.*q_proj"):
        resolve_target_modules(llama, ["q_proj", "qkv"])


def test_empty_list_is_rejected(llama) -> None:
    with pytest.raises(ValueError, match="empty"):
        resolve_target_modules(llama, [])


def test_ia3_feedforward_is_subset_of_targets(llama, bert) -> None:
    assert resolve_ia3_modules(llama, "auto") == (["k_proj", "v_proj", "down_proj"], ["down_proj"])
    assert resolve_ia3_modules(bert, "auto") == (
        ["key", "value", "output.dense"],
        ["output.dense"],
    )
    # An explicit list keeps only the feed-forward names the client asked for.
    assert resolve_ia3_modules(llama, ["q_proj", "down_proj"]) == (
        ["q_proj", "down_proj"],
        ["down_proj"],
    )
    assert resolve_ia3_modules(llama, ["v_proj"]) == (["v_proj"], [])
