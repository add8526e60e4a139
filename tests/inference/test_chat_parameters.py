"""OpenAI's chat parameters through the real API and the in-process engine, with the official
client: each is honoured (checked on the output) or refused with a 400 naming it."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}, "celsius": {"type": "boolean"}},
            "required": ["city", "celsius"],
            "additionalProperties": False,
        },
    },
}


def chat(stack, **kw):
    kw.setdefault("model", "tiny-llama")
    kw.setdefault("messages", ASK)
    return stack.client().chat.completions.create(**kw)


def refused(stack, param: str, **kw) -> dict:
    with pytest.raises(openai.BadRequestError) as exc:
        chat(stack, **kw)
    error = exc.value.response.json()["error"]
    assert error["param"] == param, error
    return error


def test_n_choices_seeded_and_repeatable(istack):
    a = chat(istack, n=3, temperature=1.0, seed=11, max_tokens=8)
    b = chat(istack, n=3, temperature=1.0, seed=11, max_tokens=8)
    assert [c.index for c in a.choices] == [0, 1, 2]
    texts = [c.message.content for c in a.choices]
    assert texts == [c.message.content for c in b.choices]
    assert len(set(texts)) > 1  # each choice samples on its own
    one = chat(istack, max_tokens=8)
    assert a.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt counts once
    assert 3 <= a.usage.completion_tokens <= 24


def test_logprobs_and_top_logprobs(istack):
    reply = chat(istack, temperature=0, max_tokens=5, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert "".join(t.token for t in content).startswith(reply.choices[0].message.content[:1])
    for t in content:
        assert len(t.top_logprobs) == 3 and t.top_logprobs[0].logprob == pytest.approx(t.logprob)
    refused(istack, "top_logprobs", top_logprobs=2)
    refused(istack, "top_logprobs", logprobs=True, top_logprobs=21)


def test_json_schema_and_json_object(istack, tiny_model):
    schema = WEATHER["function"]["parameters"]
    reply = chat(
        istack,
        temperature=0,
        max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content), schema)
    # Any JSON object: favouring "{" and "}" (not the '{"' token) gives "{}" only if the
    # grammar forbids "}" first and "{" second, and stops the reply once the object closes.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    braces = {str(tok.convert_tokens_to_ids(b)): 30 for b in "{}"}
    obj = chat(
        istack,
        temperature=0,
        max_tokens=20,
        response_format={"type": "json_object"},
        logit_bias=braces,
    )
    assert obj.choices[0].message.content == "{}" and obj.choices[0].finish_reason == "stop"
    refused(istack, "response_format.type", response_format={"type": "yaml"})


def test_forced_tool_calls_parse_and_validate(istack):
    model = "tiny-llama-64-local"  # same weights as tiny-llama-64, served in-process
    for choice in ({"type": "function", "function": {"name": "get_weather"}}, "required"):
        reply = chat(
            istack, model=model, tools=[WEATHER], tool_choice=choice, temperature=0, max_tokens=120
        )
        [call] = reply.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and call.id.startswith("call_")
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
        assert reply.choices[0].message.content is None
        assert reply.choices[0].finish_reason == (
            "stop" if isinstance(choice, dict) else "tool_calls"
        )
    free = chat(istack, model=model, tools=[WEATHER], temperature=0, max_tokens=10)
    assert free.choices[0].finish_reason in ("stop", "length", "tool_calls")
    stream = chat(
        istack,
        model=model,
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
        temperature=0,
        max_tokens=120,
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]
    assert any(d.tool_calls for d in deltas)


def test_tool_choices_that_cannot_be_honoured_name_the_field(istack):
    # (a template without tools support is refused naming `tools`: every builtin base's
    # template renders tools now, so tests/core/inference checks that predicate directly)
    refused(istack, "tool_choice", tool_choice="required")
    refused(
        istack,
        "tool_choice",
        model="tiny-llama-64-local",
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "nope"}},
    )


def test_penalties_and_logit_bias_change_the_output(istack):
    plain = chat(istack, temperature=0, max_tokens=30).choices[0].message.content
    freq = chat(istack, temperature=0, max_tokens=30, frequency_penalty=2.0)
    pres = chat(istack, temperature=0, max_tokens=30, presence_penalty=2.0)
    assert freq.choices[0].message.content != plain
    assert pres.choices[0].message.content != plain
    forced = chat(istack, temperature=0, max_tokens=3, logit_bias={"42": 100})
    assert forced.choices[0].logprobs is None
    assert len(set(forced.choices[0].message.content)) <= 3 and forced.usage.completion_tokens == 3
    refused(istack, "logit_bias", logit_bias={"word": 1})
    refused(istack, "logit_bias", logit_bias={"999999": 1})
    refused(istack, "frequency_penalty", frequency_penalty=3)


def test_budget_stop_seed_and_usage(istack):
    short = chat(istack, temperature=0, max_completion_tokens=4)
    assert short.usage.completion_tokens == 4 and short.choices[0].finish_reason == "length"
    chunks = list(chat(istack, max_tokens=4, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    refused(istack, "stop", stop=["a", "b", "c", "d", "e"])
    refused(istack, "stop", stop=["x" * 65])
    assert chat(istack, seed=2**64 - 1, max_tokens=2).choices
    refused(istack, "seed", seed=2**64)


def test_context_length_and_content_parts(istack):
    error = refused(istack, "messages", messages=[{"role": "user", "content": "capital " * 600}])
    assert error["code"] == "context_length_exceeded"
    refused(istack, "messages", max_tokens=500)  # prompt + budget past the 512-token context
    error = refused(
        istack,
        "messages.0.content",
        messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}],
    )
    assert "text must be a string" in error["message"]
    parts = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    error = refused(istack, "messages.0.content", messages=[{"role": "user", "content": parts}])
    assert "image_url" in error["message"]
    joined = chat(
        istack,
        temperature=0,
        max_tokens=5,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": m} for m in ("What is the capital ", "of France?")
                ],
            }
        ],
    )
    assert (
        joined.choices[0].message.content
        == chat(istack, temperature=0, max_tokens=5).choices[0].message.content
    )


def test_unknown_fields_are_refused_not_ignored(istack):
    with pytest.raises(openai.BadRequestError) as exc:
        chat(istack, extra_body={"audio": {"voice": "alloy"}})
    assert exc.value.response.json()["error"]["param"] == "audio"
    assert chat(istack, max_tokens=1, user="u-1", metadata=None).choices


def test_completion_logprobs_in_the_legacy_shape(istack):
    client = istack.client()
    kw = dict(model="tiny-llama", prompt="The capital of", temperature=0, max_tokens=6)
    done = client.completions.create(logprobs=2, **kw)
    [choice] = done.choices
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == done.usage.completion_tokens
    assert "".join(lp.tokens).startswith(choice.text[:1])
    assert lp.text_offset[0] == 0
    assert lp.text_offset == [sum(map(len, lp.tokens[:i])) for i in range(len(lp.tokens))]
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        assert len(top) <= 3 and top[token] == pytest.approx(logprob)
        assert max(top.values()) == pytest.approx(logprob)  # greedy: the likeliest
    none = client.completions.create(logprobs=0, **kw).choices[0].logprobs
    assert none.tokens == lp.tokens and all(len(t) == 1 for t in none.top_logprobs)
    assert client.completions.create(**kw).choices[0].logprobs is None
    streamed = list(client.completions.create(logprobs=2, stream=True, **kw))
    pieces = [c.choices[0].logprobs for c in streamed if c.choices[0].logprobs]
    assert sum((p.tokens for p in pieces), []) == lp.tokens
    assert sum((p.text_offset for p in pieces), []) == lp.text_offset
