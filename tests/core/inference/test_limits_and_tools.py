"""Back-pressure, timeouts and tool-call parsing of the in-process engine, on the tiny Llama."""

from __future__ import annotations

import json
import threading
import time

import pytest

from core.inference import tool_calls
from core.inference.engine import InferenceEngine
from core.inference.errors import GenerationTimeout, Overloaded
from core.inference.params import GenerationParams
from core.model_store import StoredModel


def small(engine, **inference) -> InferenceEngine:
    """The same storage and models with other `settings.inference` limits."""
    settings = engine.settings
    settings = settings.model_copy(
        update={"inference": settings.inference.model_copy(update=inference)}
    )
    return InferenceEngine(settings, engine.pool.store.storage)


def long_request(engine, model) -> tuple[list[int], GenerationParams]:
    tok = engine.tokenizer(model)
    never_end = {tok.eos_token_id: -100.0}
    return tok("hello")["input_ids"], GenerationParams(500, 1.0, logit_bias=never_end)


def test_a_full_queue_is_refused_with_retry_after(engine, models):
    m = models["base"]
    limited = small(engine, max_queue=2, max_batch=1)
    request = long_request(limited, m)
    outcomes: list[object] = []

    def ask():
        try:
            outcomes.append(limited.generate(m, [request]))
        except Exception as exc:  # noqa: BLE001 - what is checked
            outcomes.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    refused = [e for e in outcomes if isinstance(e, Overloaded)]
    served = [g for g in outcomes if isinstance(g, list)]
    assert refused and served and len(refused) + len(served) == 6
    assert refused[0].status_code == 503 and refused[0].headers == {"Retry-After": "1"}
    assert all(g[0].completion_tokens == 500 for g in served)


def test_a_generation_past_its_deadline_is_cancelled(engine, models):
    m = models["base"]
    # 500 tokens take the tiny model ~0.5 s on a quiet machine: a deadline a tenth of that is
    # always passed mid-generation, however fast the CPU
    hurried = small(engine, timeout_s=0.05)
    with pytest.raises(GenerationTimeout):
        hurried.generate(m, [long_request(hurried, m)])
    for _ in range(100):  # the cancelled row frees the scheduler at its next step
        if hurried.stats()["queue_depth"] == 0 and hurried.stats()["batches"] == 1:
            break
        time.sleep(0.1)
    assert hurried.stats()["failed"] == 0 and hurried.stats()["queue_depth"] == 0


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


def test_only_a_template_that_renders_tools_counts_as_tools_aware():
    from core.inference.tool_calls import template_supports_tools
    from core.tiny_model import CHAT_TEMPLATE, build_tokenizer

    tok = build_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    assert template_supports_tools(tok)  # Lathe's default renders tools (Hermes-style)
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert not template_supports_tools(tok)  # chat with `tools` is then a 400 naming tools


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def _chat(engine, stream: bool = False, **body) -> tuple[dict, str]:
    """A chat through the in-process backend: (the final message, its finish_reason); a
    stream is folded into the same, as the openai client's users do."""
    from core.inference.backends.local import LocalBackend

    model = StoredModel("tiny-llama", "tiny-llama")
    body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [WEATHER], "temperature": 0, **body}  # fmt: skip
    backend = LocalBackend(engine)
    prepared = backend._prepare_chat(model, body)
    if not stream:
        choice = backend._chat_object(model, body, *prepared)["choices"][0]
        return choice["message"], choice["finish_reason"]
    message: dict = {"content": "", "tool_calls": []}
    finish = None
    for chunk in backend._chat_chunks(model, body, *prepared):
        for choice in chunk["choices"]:
            delta = choice["delta"]
            message["content"] += delta.get("content") or ""
            message["tool_calls"] += delta.get("tool_calls") or []
            finish = choice["finish_reason"] or finish
    return message, finish


@pytest.mark.parametrize("stream", [False, True], ids=["object", "stream"])
def test_tool_calls_finish_as_openai_does(engine, stream):
    for choice, finish in (("required", "tool_calls"), (NAMED, "stop")):
        message, reason = _chat(engine, stream, tool_choice=choice, max_tokens=60)
        [call] = message["tool_calls"]
        assert json.loads(call["function"]["arguments"])["city"] in ("Paris", "Rome")
        assert reason == finish, choice
    whole = json.dumps(
        {"name": "get_weather", "arguments": json.loads(call["function"]["arguments"])}
    )
    tokens = len(engine.tokenizer(StoredModel("tiny-llama", "tiny-llama"))(whole)["input_ids"])
    message, reason = _chat(engine, stream, tool_choice="required", max_tokens=tokens - 3)
    [cut] = message["tool_calls"]  # cut by max_tokens: still a call, its arguments partial
    assert reason == "length" and not message["content"]
    assert cut["function"]["name"] == "get_weather"
    partial = cut["function"]["arguments"]
    assert partial and call["function"]["arguments"].startswith(partial[:-2]), partial


def test_a_hermes_call_cut_by_max_tokens_is_a_partial_call():
    text = 'Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Ro'
    content, [call] = tool_calls.parse(text, False, True, ["get_weather"], cut=True)
    assert content == "Sure."
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Ro'}
    _, [named] = tool_calls.parse('{"name": "get_w', True, True, ["get_weather", "time"], True)
    assert named["function"] == {"name": "get_weather", "arguments": ""}
    assert tool_calls.parse(text, False, True, ["get_weather"])[1] == []  # not cut: no call
