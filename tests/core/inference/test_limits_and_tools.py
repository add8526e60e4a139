"""Back-pressure, timeouts and tool-call parsing of the in-process engine, on the tiny Llama."""

from __future__ import annotations

import json
import threading

import pytest

from core.inference import tool_calls
from core.inference.engine import InferenceEngine
from core.inference.errors import GenerationTimeout, Overloaded
from core.inference.params import GenerationParams


@pytest.fixture(scope="module")
def small_engine(engine) -> InferenceEngine:
    """The same storage and models, a queue of 2 and a 1-second deadline."""
    settings = engine.settings.model_copy(
        update={"inference_max_queue": 2, "inference_timeout_s": 1.0, "inference_max_batch": 1}
    )
    return InferenceEngine(settings, engine.pool.store.storage)


def test_a_full_queue_is_refused_with_retry_after(small_engine, models):
    m = models["base"]
    tok = small_engine.tokenizer(m)
    ids = tok("hello")["input_ids"]
    long = GenerationParams(max_tokens=500, temperature=1.0, logit_bias={tok.eos_token_id: -100})
    errors: list[Exception] = []

    def ask():
        try:
            small_engine.generate(m, [(ids, long)])
        except Exception as exc:  # noqa: BLE001 - what is checked
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    overloaded = [e for e in errors if isinstance(e, Overloaded)]
    assert overloaded and overloaded[0].headers == {"Retry-After": "1"}
    assert overloaded[0].status_code == 503
    # Past the 1 s deadline the others are cancelled (504), and the engine serves again.
    assert any(isinstance(e, GenerationTimeout) for e in errors)
    [done] = small_engine.generate(m, [(ids, GenerationParams(max_tokens=2, temperature=0))])
    assert done.completion_tokens == 2


def test_hermes_tool_calls_are_parsed_into_openai_calls():
    text = 'Let me look. <tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}'
    text += '</tool_call><tool_call>{"name": "time", "arguments": {}}</tool_call>'
    content, calls = tool_calls.parse(text, forced=False, parallel=True)
    assert content == "Let me look."
    assert [c["function"]["name"] for c in calls] == ["get_weather", "time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Rome"}
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    _, one = tool_calls.parse(text, forced=False, parallel=False)
    assert len(one) == 1
    assert tool_calls.parse("no calls here", forced=False, parallel=True) == ("no calls here", [])
    assert tool_calls.parse('<tool_call>{"name": broken</tool_call>', False, True)[1] == []
