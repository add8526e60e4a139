"""An in-process engine over local storage holding two LoRA adapters of the tiny Llama (random,
distinct weights, so each changes the output), as a training job would have stored them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.model_store import StoredModel


def _store_lora(base_dir: Path, objects: Path, key: str, seed: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=8,
        lora_alpha=32,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
    )
    peft = get_peft_model(model, config)
    out = objects / key
    peft.save_pretrained(out)
    manifest = {"format": "peft", "adapter_type": "lora", "task": "causal_lm"}
    (out / "lathe_adapter.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="session")
def engine(tmp_path_factory, model_cache):
    import torch

    from core.inference.engine import InferenceEngine
    from core.settings import Settings
    from core.storage import get_storage

    torch.set_num_threads(1)  # as `lathe inference` runs it: spinning threads crawl on a busy CPU
    root = tmp_path_factory.mktemp("engine")
    settings = Settings(
        data_dir=root / "data",
        model_cache_dir=model_cache,
        storage={"url": f"file://{root / 'objects'}"},
        inference={"batch_window_ms": 30},
    )
    for i in (1, 2):
        _store_lora(model_cache / "tiny-llama", root / "objects", f"lora{i}", seed=i)
    return InferenceEngine(settings, get_storage(settings))


@pytest.fixture(scope="session")
def models() -> dict[str, StoredModel]:
    return {
        "base": StoredModel("tiny-llama", "tiny-llama"),
        "a": StoredModel("ft:tiny-llama:t:a:1", "tiny-llama", "lora1"),
        "b": StoredModel("ft:tiny-llama:t:b:2", "tiny-llama", "lora2"),
    }
