"""The in-process engine on the real tiny Llama: concurrent requests over several LoRA
adapters of one base decode in one batch, with the answers each would get alone."""

from __future__ import annotations

import json
import threading

import jsonschema
import pytest

from core.inference.cache import ModelCache
from core.inference.errors import BackendError
from core.inference.params import Delta, Generation, GenerationParams, Grammar
from core.model_store import StoredModel
from tests.utils.batch_stats import largest, served


def prompt(engine, model, text="The capital of"):
    return engine.tokenizer(model)(text)["input_ids"]


def greedy(n=10, **kw) -> GenerationParams:
    return GenerationParams(max_tokens=n, temperature=0, **kw)


def test_lru_evicts_unpinned_least_recent():
    cache, loads = ModelCache(2), []

    def loader(name):
        return lambda: loads.append(name) or name

    cache.get_or_load("base", loader("base"), pin=True)
    cache.get_or_load("a", loader("a"))
    cache.get_or_load("b", loader("b"))  # over capacity: "a" goes, the pinned base stays
    assert "base" in cache and "b" in cache and "a" not in cache
    cache.get_or_load("b", loader("b"))
    assert loads == ["base", "a", "b"]


def test_mixed_adapters_batch_together_and_answer_as_alone(engine, models):
    alone = {
        name: engine.generate(m, [(prompt(engine, m), greedy())])[0].text
        for name, m in models.items()
    }
    assert len(set(alone.values())) == 3  # each adapter changes the answer
    before = engine.stats()["batch_sizes"]
    results: dict[tuple[str, int], str] = {}

    def ask(name: str, i: int) -> None:
        m = models[name]
        results[(name, i)] = engine.generate(m, [(prompt(engine, m), greedy())])[0].text

    threads = [threading.Thread(target=ask, args=(n, i)) for i in range(3) for n in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(results[(n, i)] == alone[n] for n in models for i in range(3))
    after = engine.stats()["batch_sizes"]
    assert largest(before, after) >= 3, after  # several adapters decoded in one batch
    assert served(before, after) == 9


def test_requests_join_a_running_batch_and_answer_as_alone(engine, models):
    """Continuous batching: requests that arrive while a long generation decodes join its
    batch between steps (the engine counts the joins) and leave when done, each answering
    exactly as it does alone, over mixed adapters."""
    base = models["base"]
    tok = engine.tokenizer(base)
    long_params = greedy(150, logit_bias={tok.eos_token_id: -100.0})  # runs its whole budget
    long_alone = engine.generate(base, [(prompt(engine, base, "Once"), long_params)])[0]
    alone = {
        n: engine.generate(m, [(prompt(engine, m), greedy())])[0].text for n, m in models.items()
    }
    before = engine.stats()
    started, events, results = threading.Event(), [], {}

    def long() -> None:
        for _, item in engine.stream(base, [(prompt(engine, base, "Once"), long_params)]):
            started.set()
            if isinstance(item, Generation):
                results["long"] = item
        events.append("long")

    def short(name: str) -> None:
        m = models[name]
        results[name] = engine.generate(m, [(prompt(engine, m), greedy())])[0].text
        events.append(name)

    runner = threading.Thread(target=long)
    runner.start()
    assert started.wait(60)
    joiners = [threading.Thread(target=short, args=(n,)) for n in models]
    for t in joiners:
        t.start()
    for t in [*joiners, runner]:
        t.join(120)
    after = engine.stats()
    assert after["joined"] - before["joined"] == 3
    assert events[-1] == "long"  # the short ones left the batch before it ended
    assert results["long"].text == long_alone.text and results["long"].completion_tokens == 150
    assert all(results[n] == alone[n] for n in models)
    sizes = before["batch_sizes"], after["batch_sizes"]
    assert served(*sizes) == 4, sizes
    assert largest(*sizes) >= 4, sizes  # one batch served all four


def test_stop_strings_are_cut_and_never_streamed(engine, models):
    m = models["base"]
    whole = engine.generate(m, [(prompt(engine, m), greedy(12))])[0].text
    stop = whole[3:5]
    pieces = list(engine.stream(m, [(prompt(engine, m), greedy(12, stop=[stop]))]))
    streamed = "".join(p.text for _, p in pieces if isinstance(p, Delta))
    final = pieces[-1][1]
    assert isinstance(final, Generation) and final.finish_reason == "stop"
    assert streamed == final.text == whole[: whole.find(stop)]


def test_logit_bias_penalties_and_seed(engine, models):
    m = models["base"]
    ids = prompt(engine, m)
    forced = engine.generate(m, [(ids, greedy(4, logit_bias={42: 100.0}))])[0]
    tok = engine.tokenizer(m)
    assert forced.text == tok.decode([42] * 4)
    plain = engine.generate(m, [(ids, greedy(30))])[0].text
    penalised = engine.generate(m, [(ids, greedy(30, frequency_penalty=2.0))])[0].text
    assert penalised != plain
    sampled = GenerationParams(max_tokens=8, temperature=1.0, seed=5)
    a, b = engine.generate(m, [(ids, sampled), (ids, sampled)])
    assert a.text == b.text


def test_logprobs_are_the_chosen_tokens_and_top_ones(engine, models):
    m = models["a"]
    [g] = engine.generate(m, [(prompt(engine, m), greedy(5, logprobs=True, top_logprobs=3))])
    assert len(g.logprobs) == g.completion_tokens
    for item in g.logprobs:
        assert len(item.top_logprobs) == 3 and item.logprob <= 0
        assert item.top_logprobs[0][1] == pytest.approx(item.logprob)  # greedy: the top one


def test_json_schema_output_parses_and_validates(engine, models):
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "colour": {"enum": ["red", "blue"]}},
        "required": ["ok", "colour"],
        "additionalProperties": False,
    }
    m = models["b"]
    [g] = engine.generate(m, [(prompt(engine, m), greedy(40, grammar=Grammar(schema)))])
    assert g.finish_reason == "stop"
    jsonschema.validate(json.loads(g.text), schema)


def test_a_model_that_will_not_load_fails_alone(engine, models):
    gone = StoredModel("ft:tiny-llama:t:gone:3", "tiny-llama", "missing")
    results: dict[str, object] = {}

    def ask(name, m):
        try:
            results[name] = engine.generate(m, [(prompt(engine, models["base"]), greedy())])
        except Exception as exc:  # noqa: BLE001 - the failure is what is checked
            results[name] = exc

    threads = [
        threading.Thread(target=ask, args=(n, m)) for n, m in [("gone", gone), *models.items()]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert isinstance(results["gone"], (BackendError, FileNotFoundError))
    assert all(isinstance(results[n], list) for n in models)
