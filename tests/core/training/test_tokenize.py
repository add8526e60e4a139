"""Loss masks: only trained assistant turns carry labels, whatever BPE does at boundaries."""

from __future__ import annotations

import pytest

from core.data.examples import Conversation, Message, TextExample
from core.training.tokenize import IGNORE, tokenize_example


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _trained_text(tok, t) -> str:
    return tok.decode(
        [i for i, label in zip(t.input_ids, t.labels, strict=True) if label != IGNORE]
    )


def test_only_assistant_turns_are_trained(tok):
    conv = Conversation(
        (
            Message("system", "Be brief."),
            Message("user", "Capital of France?"),
            Message("assistant", "Paris"),
            Message("user", "And Japan?"),
            Message("assistant", "Tokyo"),
        )
    )
    t = tokenize_example(tok, conv, 512)
    assert _trained_text(tok, t) == "Paris<|end|>\nTokyo<|end|>\n"
    assert len(t.input_ids) == len(t.labels) and not t.truncated


def test_weight_zero_turns_are_not_trained(tok):
    conv = Conversation(
        (
            Message("user", "Hi"),
            Message("assistant", "Bad answer", weight=0),
            Message("user", "Again"),
            Message("assistant", "Good answer", weight=1),
        )
    )
    assert _trained_text(tok, tokenize_example(tok, conv, 512)) == "Good answer<|end|>\n"


def test_text_examples_train_every_token_and_truncate(tok):
    t = tokenize_example(tok, TextExample("The quick brown fox jumps over the lazy dog."), 5)
    assert t.truncated and len(t.input_ids) == 5
    assert all(label != IGNORE for label in t.labels)


def test_prompt_rendering_matches_inference(tok):
    """What the trainer masks as prompt is exactly what inference feeds the model."""
    conv = Conversation((Message("user", "What is 2+2?"), Message("assistant", "4")))
    t = tokenize_example(tok, conv, 512)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True
    )["input_ids"]
    assert t.input_ids[: len(prompt)] == prompt
    assert all(label == IGNORE for label in t.labels[: len(prompt)])
