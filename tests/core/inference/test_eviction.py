"""Adapter eviction across bases (issue 26 item 1): evicting or deleting the last adapter on a
base must leave that base, and every other model on it, serving as before."""

from __future__ import annotations

import pytest

from core.inference.params import GenerationParams
from core.model_store import StoredModel
from tests.core.inference.conftest import _store_lora

BASE_A, BASE_B = "tiny-llama", "tiny-llama-b"


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory, model_cache):
    """Two bases (the second is the tiny Llama's directory under another name) and an adapter
    cache of two, so two fine-tunes of B evict the one of A."""
    from core.inference.engine import InferenceEngine
    from core.settings import BaseModelSource, Settings, _default_base_models
    from core.storage import get_storage

    root = tmp_path_factory.mktemp("eviction")
    path = str(model_cache / "tiny-llama")
    settings = Settings(
        data_dir=root / "data",
        model_cache_dir=model_cache,
        base_models={**_default_base_models(), BASE_B: BaseModelSource(path=path)},
        storage={"url": f"file://{root / 'objects'}"},
        inference={"cache_size": 2},
    )
    for i in (1, 2, 3):
        _store_lora(model_cache / "tiny-llama", root / "objects", f"lora{i}", seed=i)
    return InferenceEngine(settings, get_storage(settings))


def _ask(engine, model: StoredModel) -> str:
    ids = engine.tokenizer(model)("The capital of")["input_ids"]
    params = GenerationParams(max_tokens=8, temperature=0)
    return engine.generate(model, [(ids, params)])[0].text


def test_evicting_the_last_adapter_of_a_base_leaves_the_base_serving(small_engine):
    base_a = StoredModel(BASE_A, BASE_A)
    tuned_a = StoredModel("ft:tiny-llama:t:a:1", BASE_A, "lora1")
    tuned_b = [StoredModel(f"ft:tiny-llama-b:t:b{i}:1", BASE_B, f"lora{i}") for i in (2, 3)]
    expected = {m.id: _ask(small_engine, m) for m in (base_a, tuned_a)}
    for model in tuned_b:  # with A's, more adapters than the cache holds: A's goes
        _ask(small_engine, model)
    loaded = ["ft_tiny-llama-b_t_b2_1", "ft_tiny-llama-b_t_b3_1"]
    assert small_engine.pool.loaded_adapters() == loaded
    assert _ask(small_engine, base_a) == expected[base_a.id]
    assert _ask(small_engine, tuned_a) == expected[tuned_a.id]  # attached again
    assert _ask(small_engine, base_a) == expected[base_a.id]


def test_deleting_the_only_adapter_of_a_base_leaves_the_base_serving(small_engine):
    base_a = StoredModel(BASE_A, BASE_A)
    tuned_a = StoredModel("ft:tiny-llama:t:a:1", BASE_A, "lora1")
    tuned_b = StoredModel("ft:tiny-llama-b:t:b2:1", BASE_B, "lora2")
    expected = _ask(small_engine, base_a)
    _ask(small_engine, tuned_a)
    _ask(small_engine, tuned_b)
    small_engine.pool.forget(tuned_a)
    assert _ask(small_engine, base_a) == expected
    assert "ft_tiny-llama_t_a_1" not in small_engine.pool.loaded_adapters()
    assert _ask(small_engine, tuned_b)  # the other base's adapter is untouched
