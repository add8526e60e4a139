"""Real vLLM behind Lathe: two LoRAs fine-tuned by real jobs on the head_dim-64 tiny Llama,
loaded into the stack's vLLM server at run time and served concurrently through Lathe's API
with the official client; their greedy answers equal the in-process engine's.

vLLM runs from `.venv-vllm` (scripts/install_vllm.sh); these tests skip, with that reason,
only where it could not be installed.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.utils.flows import CAPITALS

pytestmark = pytest.mark.slow


def ask(country: str) -> list[dict]:
    return [{"role": "user", "content": f"What is the capital of {country}?"}]


def in_process_answers(stack, model_id: str, prompts: list[list[dict]]) -> list[str]:
    """The same requests answered by Lathe's in-process engine (here, in the test process),
    from the same stored artifact."""
    from core.inference.backends.local import LocalBackend
    from core.inference.engine import InferenceEngine
    from core.model_store import StoredModel
    from core.persistence.db import session_scope
    from core.persistence.models import Model
    from core.settings import Settings
    from core.storage import get_storage

    saved = dict(os.environ)
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("LATHE_", "AWS_"))})
    os.environ["LATHE_VLLM_ENABLED"] = "false"
    try:
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with session_scope(settings.resolved_database_url) as session:
        stored = StoredModel.of(session.get(Model, model_id))
    backend = LocalBackend(InferenceEngine(settings, get_storage(settings)))
    out = []
    for messages in prompts:
        body = {"model": model_id, "messages": messages, "max_tokens": 8, "temperature": 0}
        out.append(asyncio.run(backend.chat(stored, body))["choices"][0]["message"]["content"])
    return out


def test_two_loras_served_concurrently_by_vllm_match_in_process(istack, vllm_loras, vllm_up):
    client = istack.client()
    jobs = [(m, country) for m in [*vllm_loras, "tiny-llama-64"] for country, _ in CAPITALS]

    def one(job):
        model, country = job
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=ask(country), temperature=0, max_tokens=8
        )
        return raw.headers["x-lathe-backend"], raw.parse()

    with ThreadPoolExecutor(12) as pool:
        served = list(pool.map(one, jobs * 2))
    assert {backend for backend, _ in served} == {"vllm"}
    assert all(
        reply.model == model for (model, _), (_, reply) in zip(jobs * 2, served, strict=True)
    )
    answers = {
        (m, c): r.choices[0].message.content
        for (m, c), (_, r) in zip(jobs * 2, served, strict=True)
    }
    for lora in vllm_loras:
        assert [answers[(lora, c)] for c, _ in CAPITALS] == [city for _, city in CAPITALS]
    status = istack.inference_stats()["vllm"]["tiny-llama-64"]
    # this test's two fine-tunes, loaded at run time, once each (the stack's vLLM may hold
    # other tests' adapters too: tests/inference/test_tinker_vllm.py's sampler weights)
    assert len([a for a in status["adapters"] if a.startswith("ft_")]) == 2, status
    reference = in_process_answers(istack, vllm_loras[1], [ask(c) for c, _ in CAPITALS])
    assert reference == [answers[(vllm_loras[1], c)] for c, _ in CAPITALS]
    base_reference = in_process_answers(istack, "tiny-llama-64", [ask("France")])
    assert base_reference == [answers[("tiny-llama-64", "France")]]


def test_vllm_streams_and_honours_chat_parameters(istack, vllm_loras, vllm_up):
    client = istack.client()
    model = vllm_loras[0]
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=ask("Japan"),
            temperature=0,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Tokyo"
    assert chunks[-1].usage.completion_tokens > 0 and {c.model for c in chunks} == {model}
    reply = client.chat.completions.create(
        model=model,
        messages=ask("Italy"),
        temperature=0.5,  # vLLM refuses n > 1 with greedy sampling (a 400, relayed)
        seed=1,
        max_tokens=4,
        n=2,
        logprobs=True,
        top_logprobs=2,
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert [c.message.content for c in reply.choices] == ["Rome", "Rome"]  # it learned that
    assert len(reply.choices[0].logprobs.content[0].top_logprobs) == 2
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=model, messages=ask("Italy"), temperature=0, n=2)
    assert "n must be 1" in exc.value.response.json()["error"]["message"]
    # A schema whose every valid output is whitespace-free (vLLM's grammar lets an object pad
    # with whitespace until max_tokens): the answer is one of the enum's JSON strings.
    schema = {"type": "string", "enum": ["Madrid", "Lisbon"]}
    shaped = client.chat.completions.create(
        model=model,
        messages=ask("Spain"),
        temperature=0,
        max_tokens=20,
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    )
    assert shaped.choices[0].message.content == '"Madrid"'
    assert shaped.choices[0].finish_reason == "stop"
    done = client.completions.create(
        model=model, prompt="The capital of", temperature=0, max_tokens=4, logprobs=2
    )
    lp = done.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) == 4
    assert all(token in top for token, top in zip(lp.tokens, lp.top_logprobs, strict=True))


def test_tool_requests_on_a_vllm_base_are_parsed_in_process(istack, vllm_up):
    from tests.inference.test_chat_parameters import WEATHER

    raw = istack.client().chat.completions.with_raw_response.create(
        model="tiny-llama-64",
        messages=ask("France"),
        tools=[WEATHER],
        tool_choice="required",
        temperature=0,
        max_tokens=120,
    )
    assert raw.headers["x-lathe-backend"] == "in-process"
    [call] = raw.parse().choices[0].message.tool_calls
    assert call.function.name == "get_weather"


def test_vllm_scores_prompts_as_transformers_does(istack, vllm_up, tiny64):
    """echo + logprobs with max_tokens 0 passes through to vLLM, whose prompt logprobs equal
    a transformers forward pass on the same weights (and so the in-process engine's)."""
    from tests.utils.scoring import reference_logprobs

    client = istack.client()
    text = "The capital of France is Paris"
    ids = client.completions.create(
        model="tiny-llama-64-local", prompt=text, echo=True, logprobs=1, max_tokens=0
    ).choices[0]
    raw = client.completions.with_raw_response.create(
        model="tiny-llama-64", prompt=[[1, 45, 74, 83, 9], [1, 45]], echo=True, logprobs=2,
        max_tokens=0, temperature=0,
    )  # fmt: skip
    assert raw.headers["x-lathe-backend"] == "vllm"
    done = raw.parse()
    for choice, prompt in zip(done.choices, [[1, 45, 74, 83, 9], [1, 45]], strict=True):
        lp = choice.logprobs
        assert lp.token_logprobs[0] is None and len(lp.token_logprobs) == len(prompt)
        want = reference_logprobs(tiny64, prompt)
        assert lp.token_logprobs[1:] == pytest.approx(want, abs=1e-3)
    by_text = client.completions.create(
        model="tiny-llama-64", prompt=text, echo=True, logprobs=1, max_tokens=0
    ).choices[0]
    assert by_text.text == text
    assert by_text.logprobs.token_logprobs[1:] == pytest.approx(
        ids.logprobs.token_logprobs[1:], abs=1e-3
    )  # vLLM and the in-process engine agree on the same text


def test_concurrent_scoring_of_mixed_lengths_leaves_vllm_up(istack, vllm_up, tiny64):
    """Separate scoring requests of different lengths, a multi-prompt one and chats, all at
    once: vLLM's CPU engine died on any batch holding a prompt being scored and another
    request (an einsum in its LoRA logits path). The backend's scoring gate runs each scoring
    alone; every answer is right and the server never restarts."""
    from tests.utils.scoring import reference_logprobs

    client = istack.client()
    restarts = istack.inference_stats()["vllm"]["tiny-llama-64"]["restarts"]
    prompts = [[1, 45, 74, 83, 9], [1, 45], [1, 7, 7, 7, 7, 7, 7, 3], [1, 45, 74]]

    def score(prompt):
        raw = client.completions.with_raw_response.create(
            model="tiny-llama-64", prompt=prompt, echo=True, logprobs=1, max_tokens=0
        )
        return raw.headers["x-lathe-backend"], raw.parse()

    def chat(country):
        raw = client.chat.completions.with_raw_response.create(
            model="tiny-llama-64", messages=ask(country), temperature=0, max_tokens=8
        )
        return raw.headers["x-lathe-backend"], raw.parse()

    requests = [*prompts, prompts[:2]] * 2  # the last: one request scoring two prompts
    with ThreadPoolExecutor(10) as pool:
        scored = [pool.submit(score, p) for p in requests]
        chats = [pool.submit(chat, c) for c, _ in CAPITALS[:4]]
        results = [f.result() for f in [*scored, *chats]]
    assert {backend for backend, _ in results} == {"vllm"}
    want = {tuple(p): reference_logprobs(tiny64, p) for p in prompts}
    for (_, done), prompt in zip(results, requests, strict=False):  # the chats follow
        singles = prompt if isinstance(prompt[0], list) else [prompt]
        assert len(done.choices) == len(singles)
        for choice, single in zip(done.choices, singles, strict=True):
            got = choice.logprobs.token_logprobs[1:]
            assert got == pytest.approx(want[tuple(single)], abs=1e-3)
    status = istack.inference_stats()["vllm"]["tiny-llama-64"]
    assert status["ready"] and status["restarts"] == restarts
