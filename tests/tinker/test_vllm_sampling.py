"""How a Tinker sample becomes a vLLM completions request and how vLLM's answer becomes the
SDK's `SampleResponse` (core.tinker.vllm_sampling), on the shapes vLLM 0.32 answers with.
The real round trip, SDK to vLLM, is tests/inference/test_tinker_vllm.py (it needs the
inference tests' vLLM server)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import InvalidRequest
from core.settings import Settings
from core.tinker import tinker_public_pb2 as pb
from core.tinker import vllm_sampling as vs


def request(n: int = 1, prompt_logprobs: bool = False, **params) -> dict:
    return {
        "num_samples": n,
        "prompt": {"chunks": [{"tokens": [5, 6], "type": "encoded_text"}, {"tokens": [7]}]},
        "sampling_params": params,
        "prompt_logprobs": prompt_logprobs,
    }


def test_stop_semantics_map_to_vllm_fields():
    body = vs.plan(request(), "m", 64, 16).body
    assert "ignore_eos" not in body and "stop" not in body  # None: vLLM's EOS stop
    assert vs.plan(request(stop=[]), "m", 64, 16).body["ignore_eos"] is True  # [] never
    ids = vs.plan(request(stop=[3, 4]), "m", 64, 16).body
    assert ids["stop_token_ids"] == [3, 4] and ids["ignore_eos"] is True
    text = vs.plan(request(stop="\n\nUser:"), "m", 64, 16).body
    assert text["stop"] == ["\n\nUser:"] and text["include_stop_str_in_output"] is True
    with pytest.raises(InvalidRequest) as exc:
        vs.plan(request(stop=["a", 3]), "m", 64, 16)
    assert exc.value.param == "sampling_params.stop"


def test_budget_seed_greedy_and_prompt_scoring():
    p = vs.plan(request(n=3, seed=2**64 - 1, temperature=0.7), "m", 64, 16)
    assert p.prompt == [5, 6, 7] and p.body["prompt"] == [5, 6, 7]
    assert p.max_tokens == 16 and p.body["n"] == 3  # LATHE_TINKER_MAX_SAMPLE_TOKENS
    assert 0 <= p.body["seed"] < 2**62  # vLLM's int64, with room for seed + i
    assert p.body["logprobs"] == 0 and p.body["return_token_ids"] is True
    assert vs.plan(request(max_tokens=100), "m", 10, 16).max_tokens == 7  # the context left
    greedy = vs.plan(request(n=4, temperature=0), "m", 64, 16)
    assert greedy.body["n"] == 1 and greedy.copies == 4  # vLLM refuses n > 1 when greedy
    assert vs.plan(request(n=4, temperature=1e-6), "m", 64, 16).copies == 4  # greedy to vLLM
    one = vs.plan(request(prompt_logprobs=True), "m", 64, 16)
    assert one.body["prompt_logprobs"] == 0 and one.score is None
    many = vs.plan(request(n=2, prompt_logprobs=True), "m", 64, 16)
    assert "prompt_logprobs" not in many.body and many.score["n"] == 1  # scored on its own
    with pytest.raises(InvalidRequest, match="prompt has 3 tokens, the model's context is 3"):
        vs.plan(request(), "m", 3, 16)


def test_vllm_answer_reads_as_the_sdk_proto():
    p = vs.plan(request(n=2, prompt_logprobs=True, max_tokens=3), "m", 64, 16)
    answer = {
        "choices": [
            {
                "index": 1,
                "token_ids": [9, 1],
                "logprobs": {"token_logprobs": [-0.5, -0.25]},
                "finish_reason": "stop",
            },
            {
                "index": 0,
                "token_ids": [8, 8, 8],
                "logprobs": {"token_logprobs": [-1.0, -2.0, -3.0]},
                "finish_reason": "length",
            },
        ]
    }
    rows = [None, {"6": {"logprob": -4.0}}, {"7": {"logprob": -0.5}}]  # keyed by token id
    scored = {"choices": [{"prompt_logprobs": rows}]}
    out = pb.SampleResponse.FromString(vs.read(answer, p, scored))
    first, second = out.sequences
    assert np.frombuffer(first.tokens, np.int32).tolist() == [8, 8, 8]
    assert first.stop_reason == pb.STOP_REASON_LENGTH
    assert np.frombuffer(second.tokens, np.int32).tolist() == [9, 1]
    assert np.frombuffer(second.logprobs, np.float32).tolist() == [-0.5, -0.25]
    assert second.stop_reason == pb.STOP_REASON_STOP
    plp = np.frombuffer(out.prompt_logprobs, np.float32).tolist()
    assert math.isnan(plp[0]) and plp[1:] == [-4.0, -0.5]
    none = vs.plan(request(max_tokens=0), "m", 64, 16)  # vLLM makes one token: dropped
    assert none.body["max_tokens"] == 1
    out = pb.SampleResponse.FromString(vs.read({"choices": [answer["choices"][0]]}, none, None))
    assert out.sequences[0].tokens == b"" and out.sequences[0].stop_reason == pb.STOP_REASON_LENGTH
    assert not out.HasField("prompt_logprobs")


def test_which_samplers_may_go_to_vllm():
    off = Settings(vllm={"enabled": False})
    assert not vs.vllm_may_serve(off, "b")
    assert vs.vllm_may_serve(Settings(vllm={"urls": {"b": "http://x"}}), "b")
    some = Settings(vllm={"enabled": True, "base_models": ["b"]})
    assert vs.vllm_may_serve(some, "b") and not vs.vllm_may_serve(some, "c")
    assert vs.vllm_may_serve(Settings(vllm={"enabled": True}), "c")
