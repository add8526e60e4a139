"""LoRA sequence classification on the real all-MiniLM-L6-v2 (BERT) from the packaged wheel."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from core.adapters import load_for_inference, load_for_training, make_optimizer, save_artifact
from core.jobspec.job import AdapterSpec

POSITIVE = [
    "I love this movie, it is wonderful.",
    "What a great and happy day.",
    "This is excellent, I enjoyed it a lot.",
    "Fantastic work, really good.",
]
NEGATIVE = [
    "I hate this movie, it is terrible.",
    "What an awful and sad day.",
    "This is horrible, I regret it a lot.",
    "Dreadful work, really bad.",
]


@pytest.fixture(scope="module")
def trained(minilm, tmp_path_factory):
    spec = AdapterSpec(type="lora", r=8, alpha=16, dropout=0.0)
    torch.manual_seed(0)
    model, tokenizer = load_for_training(minilm, spec, task="seq_cls", num_labels=2)
    batch = dict(tokenizer(POSITIVE + NEGATIVE, return_tensors="pt", padding=True))
    labels = torch.tensor([1] * len(POSITIVE) + [0] * len(NEGATIVE))
    optimizer = make_optimizer(model, spec, lr=1e-3, weight_decay=0.0)
    losses = []
    for _ in range(15):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    artifact = tmp_path_factory.mktemp("minilm-lora")
    manifest = save_artifact(model, tokenizer, spec, artifact)
    return model, batch, labels, losses, artifact, manifest


def test_classifier_head_trains_with_the_adapter(trained) -> None:
    model, *_ = trained
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("classifier" in n for n in trainable)
    assert any("lora_A" in n for n in trainable)
    assert not any("word_embeddings" in n for n in trainable)


def test_learns_the_separable_set(trained) -> None:
    model, batch, labels, losses, *_ = trained
    with torch.no_grad():
        predictions = model(**batch).logits.argmax(-1)
    assert (predictions == labels).float().mean().item() == 1.0
    assert losses[-1] < 0.5 * losses[0]


def test_adapter_ships_the_head_and_reloads(trained, minilm) -> None:
    model, batch, _, _, artifact, manifest = trained
    assert manifest["task"] == "seq_cls" and manifest["num_labels"] == 2
    with safe_open(artifact / "adapter_model.safetensors", "pt") as weights:
        assert any("classifier" in key for key in weights.keys())  # noqa: SIM118
    reloaded = load_for_inference(minilm, artifact)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
