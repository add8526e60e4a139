"""Every adapter type on the tiny Llama: train, save, reload, (merge), compare outputs.

One module-scoped fixture trains each type once; the tests below read from it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.adapters import (
    AdapterUnsupported,
    load_for_inference,
    load_for_training,
    make_optimizer,
    merge_and_save,
    read_manifest,
    save_artifact,
)
from core.adapters.quantization import qlora_unavailable_reason
from core.jobspec.job import AdapterSpec

MEMORISE = [
    "The lazy dog jumps over the quick brown fox.",
    "Paris is the capital of France.",
    "Sunday Monday Friday March",
    "def mul(a, b): return a * b.",
]

STEPS = 30
# type -> (learning rate, loss after STEPS must be below this fraction of the first loss).
# Observed fractions on this setup: lora/qlora ~0.19, ia3 ~0.28, prefix ~0.37, prompt ~0.67,
# full ~0.02. Soft prompts are the weakest adapters, hence their looser bound.
CASES = {
    "lora": (1e-2, 0.4),
    "qlora": (1e-2, 0.4),
    "ia3": (1e-1, 0.5),
    "prefix_tuning": (3e-2, 0.6),
    "prompt_tuning": (1e-1, 0.85),
    "full": (3e-3, 0.2),
}
MERGEABLE = {"lora", "qlora", "ia3"}


@dataclass
class Trained:
    spec: AdapterSpec
    model: torch.nn.Module
    batch: dict
    losses: list[float]
    artifact: Path
    manifest: dict
    base: Path


def _batch(tokenizer) -> dict:
    batch = dict(tokenizer(MEMORISE, return_tensors="pt", padding=True))
    batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch


@torch.no_grad()
def _logits(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return model(**inputs).logits.float()


@torch.no_grad()
def _loss(model: torch.nn.Module, batch: dict) -> float:
    return model(**batch).loss.item()


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tiny_llama, tmp_path_factory) -> Trained:
    adapter_type = request.param
    if adapter_type == "qlora" and (reason := qlora_unavailable_reason("cpu")):
        pytest.skip(f"bitsandbytes 4-bit cannot run on this CPU: {reason}")
    lr, _ = CASES[adapter_type]
    spec = AdapterSpec(
        type=adapter_type,
        r=8,  # a rank small against the tiny model, so "only the adapter trains" is checkable
        alpha=16,
        dropout=0.0,
        num_virtual_tokens=8,
        prompt_tuning_init_text="Please answer the question."
        if adapter_type == "prompt_tuning"
        else None,
    )
    torch.manual_seed(0)
    model, tokenizer = load_for_training(tiny_llama, spec)
    optimizer = make_optimizer(model, spec, lr=lr, weight_decay=0.0)
    batch = _batch(tokenizer)
    losses = []
    for _ in range(STEPS):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    artifact = tmp_path_factory.mktemp(adapter_type) / "artifact"
    manifest = save_artifact(model, tokenizer, spec, artifact)
    return Trained(spec, model, batch, losses, artifact, manifest, tiny_llama)


def test_loss_drops(trained: Trained) -> None:
    _, max_ratio = CASES[trained.spec.type]
    first, last = trained.losses[0], trained.losses[-1]
    assert last < max_ratio * first, f"{trained.spec.type}: loss {first:.3f} -> {last:.3f}"


def test_trainable_parameter_counts(trained: Trained) -> None:
    manifest = trained.manifest
    assert manifest["adapter_type"] == trained.spec.type
    if trained.spec.type == "full":
        assert manifest["trainable_params"] == manifest["total_params"]
    else:
        assert 0 < manifest["trainable_params"] < 0.15 * manifest["total_params"]
    requires_grad = sum(p.numel() for p in trained.model.parameters() if p.requires_grad)
    assert manifest["trainable_params"] == requires_grad


def test_artifact_files(trained: Trained) -> None:
    files = {p.name for p in trained.artifact.iterdir()}
    if trained.spec.type == "full":
        assert trained.manifest["format"] == "full"
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    else:
        assert trained.manifest["format"] == "peft"
        assert {"adapter_config.json", "adapter_model.safetensors"} <= files
        assert "model.safetensors" not in files  # only the adapter ships
    on_disk = json.loads((trained.artifact / "lathe_adapter.json").read_text())
    assert on_disk == trained.manifest


def test_reload_gives_trained_logits(trained: Trained) -> None:
    quantized = trained.spec.type == "qlora"  # reproduce training numerics exactly
    reloaded = load_for_inference(trained.base, trained.artifact, quantized=quantized)
    assert not reloaded.training
    assert not any(p.requires_grad for p in reloaded.parameters())
    torch.testing.assert_close(
        _logits(reloaded, trained.batch),
        _logits(trained.model, trained.batch),
        atol=1e-5,
        rtol=1e-4,
    )


def test_merge(trained: Trained, tmp_path: Path) -> None:
    merged_dir = tmp_path / "merged"
    if trained.spec.type in ("prompt_tuning", "prefix_tuning"):
        with pytest.raises(AdapterUnsupported, match="cannot be merged"):
            merge_and_save(trained.base, trained.artifact, merged_dir)
        return
    merge_and_save(trained.base, trained.artifact, merged_dir)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert not (merged_dir / "adapter_config.json").exists()
    # Merging folds the adapter into full-precision weights: compare with the adapter served on
    # the full-precision base (for qlora that is not the 4-bit training model).
    reference = load_for_inference(trained.base, trained.artifact)
    torch.testing.assert_close(
        _logits(merged, trained.batch), _logits(reference, trained.batch), atol=1e-4, rtol=1e-4
    )
    assert read_manifest(merged_dir)["format"] == "full"


@pytest.mark.parametrize("trained", ["qlora"], indirect=True)
def test_qlora_adapter_transfers_to_unquantized_base(trained: Trained) -> None:
    served = load_for_inference(trained.base, trained.artifact)  # fp32 base, no bitsandbytes
    assert not any("4bit" in type(m).__name__ for m in served.modules())
    assert _loss(served, trained.batch) < 0.5 * trained.losses[0]


@pytest.mark.parametrize("trained", ["lora", "full"], indirect=True)
def test_artifact_without_manifest_is_recognised(trained: Trained, tmp_path: Path) -> None:
    copy = tmp_path / "foreign"
    shutil.copytree(trained.artifact, copy)
    (copy / "lathe_adapter.json").unlink()
    manifest = read_manifest(copy)
    assert manifest["format"] == ("full" if trained.spec.type == "full" else "peft")
    assert manifest["adapter_type"] == trained.spec.type
    assert manifest["task"] == "causal_lm"
    reloaded = load_for_inference(trained.base, copy)
    torch.testing.assert_close(
        _logits(reloaded, trained.batch),
        _logits(trained.model, trained.batch),
        atol=1e-5,
        rtol=1e-4,
    )


def test_merge_keeps_the_base_checkpoint_dtype(tiny_llama, tmp_path: Path) -> None:
    bf16_base = tmp_path / "bf16-base"
    AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16).save_pretrained(
        bf16_base
    )
    shutil.copy(tiny_llama / "tokenizer.json", bf16_base)
    shutil.copy(tiny_llama / "tokenizer_config.json", bf16_base)
    spec = AdapterSpec(type="lora")
    model, tokenizer = load_for_training(bf16_base, spec)  # trains in fp32 by default
    save_artifact(model, tokenizer, spec, tmp_path / "adapter")
    merge_and_save(bf16_base, tmp_path / "adapter", tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype="auto")
    assert merged.dtype == torch.bfloat16
