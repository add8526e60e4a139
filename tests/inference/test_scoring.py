"""Scoring through `/v1/completions` on the in-process engine, as lm-eval and perplexity
scripts send it (`echo` + `logprobs`, `max_tokens: 0`, token-id prompts), compared with a
plain transformers forward pass on the same weights; and vLLM's tokenizer endpoints, at the
API root and under a model's own root, with the official client and plain HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.utils.scoring import download_adapter, reference_logprobs

pytestmark = pytest.mark.slow

TEXTS = ["The capital of France is Paris", "Hello"]


def scored(client, model: str, prompt, **kw):
    return client.completions.create(
        model=model, prompt=prompt, echo=True, logprobs=2, max_tokens=0, temperature=0, **kw
    )


def token_ids(istack, model: str, text: str) -> list[int]:
    r = post(istack, "/tokenize", {"model": model, "prompt": text})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def post(istack, path: str, body: dict, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or istack.key}"}
    return httpx.post(f"{istack.url}{path}", json=body, headers=headers, timeout=120)


def check_shape(choice, prompt_len: int) -> None:
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == prompt_len
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    rest = zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:], strict=True)
    for token, value, top in rest:
        assert top[token] == pytest.approx(value) and 1 <= len(top) <= 3
        assert max(top.values()) >= value - 1e-6
    assert lp.text_offset == [sum(map(len, lp.tokens[:i])) for i in range(prompt_len)]


@pytest.mark.parametrize("which", ["base", "lora"])
def test_prompt_logprobs_equal_a_transformers_forward(
    istack, tiny_model, tiny_loras, which, tmp_path
):
    client = istack.client()
    model = "tiny-llama" if which == "base" else tiny_loras[0]
    adapter = download_adapter(istack, model, tmp_path) if which == "lora" else None
    ids = [token_ids(istack, model, t) for t in TEXTS]  # with BOS, as the text prompt gets
    by_ids = scored(client, model, ids)  # two prompts of two lengths in one request
    by_text = scored(client, model, TEXTS[0])
    assert by_ids.usage.completion_tokens == 0 and by_ids.usage.prompt_tokens == sum(map(len, ids))
    for choice, prompt in zip(by_ids.choices, ids, strict=True):
        check_shape(choice, len(prompt))
        assert choice.finish_reason == "length"
        want = reference_logprobs(tiny_model, prompt, adapter)
        assert choice.logprobs.token_logprobs[1:] == pytest.approx(want, abs=1e-3)
    assert by_text.choices[0].text == TEXTS[0]
    assert by_text.choices[0].logprobs.token_logprobs == pytest.approx(
        by_ids.choices[0].logprobs.token_logprobs, abs=1e-5
    )
    # Generating after the echo (lm-eval sends max_tokens 1): the prompt's scores, then one.
    more = scored(client, model, [ids[0]]).choices[0].logprobs
    one = client.completions.create(
        model=model, prompt=ids[0], echo=True, logprobs=1, max_tokens=1, temperature=0
    )
    lp = one.choices[0].logprobs
    assert len(lp.tokens) == len(ids[0]) + 1 and lp.token_logprobs[-1] is not None
    assert lp.token_logprobs[:-1] == pytest.approx(more.token_logprobs, abs=1e-5)


def test_scoring_requests_refused_naming_the_field(istack):
    client = istack.client()
    cases = [
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": [1, 2, 10**7], "echo": True, "max_tokens": 0}, "prompt"),
        ({"prompt": [[1, 2], [3, -1]], "max_tokens": 1}, "prompt[1]"),
        ({"prompt": [[1, 2], []], "max_tokens": 1}, "prompt[1]"),
        ({"prompt": "hi", "echo": True, "logprobs": 1, "stream": True}, "stream"),
    ]
    for fields, param in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            client.completions.create(model="tiny-llama", **fields)
        assert exc.value.response.json()["error"]["param"] == param, fields


def test_tokenizer_endpoints_at_the_root_and_under_a_model(istack, tiny_model, tiny_loras):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = "The capital of France"
    for model in ("tiny-llama", tiny_loras[0]):
        root = f"/models/{model}"
        got = post(istack, f"{root}/tokenize", {"prompt": text, "return_token_strs": True}).json()
        assert got["tokens"] == tok(text)["input_ids"] and got["count"] == len(got["tokens"])
        assert got["token_strs"] == tok.convert_ids_to_tokens(got["tokens"])
        assert got["max_model_len"] > 0
        plain = post(istack, "/tokenize", {"model": model, "prompt": text,
                                           "add_special_tokens": False}).json()  # fmt: skip
        assert plain["tokens"] == tok(text, add_special_tokens=False)["input_ids"]
        chat = [{"role": "user", "content": "hi"}]
        rendered = post(istack, f"{root}/tokenize", {"messages": chat}).json()["tokens"]
        assert rendered == tok.apply_chat_template(
            chat, add_generation_prompt=True, return_dict=False
        )
        back = post(istack, f"{root}/detokenize", {"tokens": plain["tokens"]}).json()
        assert back == {"prompt": text}
        headers = {"Authorization": f"Bearer {istack.key}"}
        info = httpx.get(f"{istack.url}{root}/tokenizer_info", headers=headers).json()
        assert info["eos_token"] == tok.eos_token and info["chat_template"] == tok.chat_template
        assert info["tokenizer_class"] and "vocab_file" not in info
        listed = httpx.get(f"{istack.url}{root}/v1/models", headers=headers).json()
        assert [m["id"] for m in listed["data"]] == [model]
        ask = {"prompt": text, "max_tokens": 2, "temperature": 0}
        done = post(istack, f"{root}/v1/completions", ask).json()
        assert done["model"] == model and done["usage"]["completion_tokens"] == 2
        base_url = f"{istack.url}{root}/v1"
        chat_client = openai.OpenAI(base_url=base_url, api_key=istack.key, max_retries=0)
        reply = chat_client.chat.completions.create(model=model, messages=chat, max_tokens=2)
        assert reply.model == model


def test_tokenizer_endpoints_refuse_clearly(istack):
    assert post(istack, "/tokenize", {"prompt": "x"}).json()["error"]["param"] == "model"
    user = [{"role": "user", "content": "x"}]
    both = post(istack, "/tokenize", {"model": "tiny-llama", "prompt": "x", "messages": user})
    assert both.status_code == 400 and both.json()["error"]["param"] == "prompt"
    odd = post(istack, "/tokenize", {"model": "tiny-llama", "messages": [{"content": "x"}]})
    assert odd.status_code == 400 and odd.json()["error"]["param"].startswith("messages")
    other = post(istack, "/models/tiny-llama/tokenize", {"model": "tiny-llama-64", "prompt": "x"})
    assert other.status_code == 400 and other.json()["error"]["param"] == "model"
    bad = post(istack, "/models/tiny-llama/detokenize", {"tokens": [10**7]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tokens"
    unknown = post(istack, "/models/nope/tokenize", {"prompt": "x"})
    assert unknown.status_code == 404
    anonymous = httpx.get(f"{istack.url}/models/tiny-llama/tokenizer_info")
    assert anonymous.status_code == 401
    wrong = post(istack, "/models/tiny-llama/v1/completions", {"prompt": "x"}, key="sk-nope")
    assert wrong.status_code == 401


def test_fine_tune_embeddings_equal_peft(istack, tiny_model, tiny_loras, tmp_path):
    """A fine-tune embeds with its adapter applied (last-token pooling), unlike its base."""
    from tests.utils.embeddings import reference_embedding

    client = istack.client()
    adapter = download_adapter(istack, tiny_loras[0], tmp_path)
    text = "The capital of France"
    tuned = client.embeddings.create(model=tiny_loras[0], input=text).data[0].embedding
    assert tuned == pytest.approx(reference_embedding(tiny_model, text, "last", adapter), abs=1e-4)
    base = client.embeddings.create(model="tiny-llama", input=text).data[0].embedding
    assert tuned != pytest.approx(base, abs=1e-3)
