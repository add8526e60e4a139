from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # shared CI machine; the tiny model gains nothing from threads


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.tiny_model import ensure_tiny_llama

    return ensure_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tokenizer(tiny_llama_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_path)


@pytest.fixture
def base_model(tiny_llama_path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama_path)


@pytest.fixture(scope="session")
def chat_prompts(tokenizer) -> list[str]:
    questions = [
        "Hi",
        "What is the capital of France?",
        "Name a fruit.",
        "Count to three.",
        "Say something.",
        "Translate good morning.",
    ]
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in questions
    ]
