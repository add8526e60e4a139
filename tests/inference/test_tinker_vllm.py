"""Tinker's `sample` on vLLM: the real `tinker` SDK against the inference tests' stack, whose
vLLM serves the head_dim-64 tiny Llama, with a Tinker trainer beside it for the training
side. Samples of the base and of named sampler weights run on vLLM (their future rows say
so); unnamed snapshots stay on the trainer.

Here, not in tests/tinker: this directory's conftest holds the session's one vLLM server
(`istack`), and a fixture imported into another directory's conftest would start a second.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import create_engine, select

from tests.inference.conftest import vllm_installed
from tests.tinker.conftest import tinker_trainer
from tests.tinker.test_training_loop import datum
from tests.utils.processes import Proc

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed (.venv-vllm)"),
]
BASE = "tiny-llama-64"
PROMPT = list(range(20, 30))
LEARNED = [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51]
LOGPROB_TOLERANCE = 5e-4
"""|vLLM's prompt logprob - the trainer's forward logprob|: the same float32 weights through
different kernels (vLLM's CPU attention and punica LoRA path vs torch's eager ops) round in
other orders. Measured: at most 6e-6 on a trained rank-8 LoRA over 59 tokens (|logprob| ~10,
so a few float32 ulps); 5e-4 leaves room for other CPUs' kernels, while a wrong token,
position or adapter is off by 0.1 and more."""


@pytest.fixture(scope="module")
def trainer(istack, vllm_up, tmp_path_factory) -> Iterator[Proc]:
    log = tmp_path_factory.mktemp("tinker-vllm") / "trainer.log"
    with tinker_trainer(istack.env, log) as proc:
        yield proc


@pytest.fixture(scope="module")
def service(istack, trainer):
    import tinker

    client = tinker.ServiceClient(base_url=istack.url.removesuffix("/v1"), api_key=istack.key)
    yield client
    client.close("success").result()


@pytest.fixture(scope="module")
def kinds(istack):
    """The kinds of a sampler's futures: `vllm_sample` ran on vLLM, `sample` on the trainer."""
    from core.persistence.tinker_models import TinkerRequest

    engine = create_engine(istack.env["LATHE_DATABASE_URL"])

    def of(sampler) -> set[str]:
        with engine.connect() as c:
            query = select(TinkerRequest.kind).where(
                TinkerRequest.sampler_id == sampler._sampling_session_id
            )
            return set(c.scalars(query))

    yield of
    engine.dispose()


def test_base_sampling_on_vllm(service, kinds, tiny64):
    import tinker
    from transformers import AutoTokenizer

    base = service.create_sampling_client(base_model=BASE).result()
    prompt = tinker.ModelInput.from_ints(PROMPT)
    params = tinker.SamplingParams(max_tokens=8, seed=5, temperature=1.0, top_p=0.95, top_k=100)
    a = base.sample(prompt, 3, params).result()
    b = base.sample(prompt, 3, params).result()
    assert [s.tokens for s in a.sequences] == [s.tokens for s in b.sequences]  # seeded
    other = base.sample(prompt, 3, params.model_copy(update={"seed": 6})).result()
    assert [s.tokens for s in other.sequences] != [s.tokens for s in a.sequences]
    assert len({s.sequence_id for s in a.sequences}) == 3
    for s in a.sequences:
        assert len(s.tokens) == len(s.logprobs) == 8 and s.stop_reason == "length"
        assert all(lp < 0 for lp in s.logprobs)

    greedy = base.sample(prompt, 2, tinker.SamplingParams(max_tokens=12, temperature=0)).result()
    first = greedy.sequences[0].tokens
    assert greedy.sequences[1].tokens == first
    cut = first.index(first[2]) + 1
    stop_id = tinker.SamplingParams(max_tokens=12, temperature=0, stop=[first[2]])
    stopped = base.sample(prompt, 1, stop_id).result().sequences[0]
    assert stopped.tokens == first[:cut] and stopped.stop_reason == "stop"  # includes the stop

    tok = AutoTokenizer.from_pretrained(tiny64)
    seeded = tinker.SamplingParams(max_tokens=12, temperature=1.0, seed=7)
    ref = base.sample(prompt, 1, seeded).result().sequences[0].tokens
    word = next(w for t in ref[1:] if (w := tok.decode([t]).strip()).isascii() and w)
    stop_str = seeded.model_copy(update={"stop": [word]})  # the same draws, until the stop
    s = base.sample(prompt, 1, stop_str).result().sequences[0]
    assert s.stop_reason == "stop" and s.tokens == ref[: len(s.tokens)], (word, ref, s.tokens)
    assert word in tok.decode(s.tokens) and word not in tok.decode(s.tokens[:-1])

    never = tinker.SamplingParams(max_tokens=40, temperature=1.5, seed=1, stop=[])
    assert all(len(s.tokens) == 40 for s in base.sample(prompt, 4, never).result().sequences)
    assert kinds(base) == {"vllm_sample"}


def test_sampler_weights_and_prompt_logprobs_on_vllm(service, kinds):
    """A LoRA trained on one sequence, saved by name: its sampler runs on vLLM with the
    adapter loaded, and vLLM's prompt logprobs equal the trainer's forward logprobs."""
    import tinker

    tc = service.create_lora_training_client(base_model=BASE, rank=4, seed=1).result()
    for _ in range(6):
        tc.forward_backward([datum(LEARNED)], "cross_entropy").result()
        tc.optim_step(tinker.AdamParams(learning_rate=2e-2)).result()
    trained_lp = tc.forward([datum(LEARNED)], "cross_entropy").result()
    trained_lp = np.array(trained_lp.loss_fn_outputs[0]["logprobs"].tolist())
    path = tc.save_weights_for_sampler("learned").result().path
    lora = service.create_sampling_client(model_path=path).result()
    base = service.create_sampling_client(base_model=BASE).result()

    got = lora.compute_logprobs(tinker.ModelInput.from_ints(LEARNED)).result()
    assert got[0] is None
    np.testing.assert_allclose(got[1:], trained_lp, atol=LOGPROB_TOLERANCE)
    base_lp = base.compute_logprobs(tinker.ModelInput.from_ints(LEARNED)).result()
    assert sum(got[1:]) > sum(base_lp[1:]) + 5  # the adapter is applied: it learned LEARNED

    # several samples with prompt logprobs: vLLM scores the prompt in a request of its own
    params = tinker.SamplingParams(max_tokens=6, seed=3, temperature=1.0)
    out = lora.sample(tinker.ModelInput.from_ints(LEARNED[:4]), 3, params, True).result()
    np.testing.assert_allclose(out.prompt_logprobs[1:], got[1:4], atol=LOGPROB_TOLERANCE)
    assert len(out.sequences) == 3
    greedy = tinker.SamplingParams(max_tokens=6, temperature=0)
    start = tinker.ModelInput.from_ints(LEARNED[:4])
    learned = lora.sample(start, 1, greedy).result().sequences[0].tokens
    assert learned != base.sample(start, 1, greedy).result().sequences[0].tokens
    assert kinds(lora) == {"vllm_sample"} and kinds(base) == {"vllm_sample"}

    snapshot = tc.save_weights_and_get_sampling_client().result()  # unnamed: on the trainer
    assert snapshot.sample(start, 1, greedy).result().sequences[0].tokens == learned
    assert kinds(snapshot) == {"sample"}


def test_sampling_errors_on_vllm(service):
    import tinker

    base = service.create_sampling_client(base_model=BASE).result()
    too_long = tinker.ModelInput.from_ints([5] * 600)  # LATHE_VLLM_MAX_MODEL_LEN is 512
    with pytest.raises(tinker.RequestFailedError, match="prompt has 600 tokens"):
        base.sample(too_long, 1, tinker.SamplingParams(max_tokens=2)).result()
    with pytest.raises(tinker.BadRequestError, match="sampling_params.top_p"):
        base.sample(tinker.ModelInput.from_ints(PROMPT), 1, tinker.SamplingParams(top_p=0)).result()
    ok = base.sample(tinker.ModelInput.from_ints(PROMPT), 1, tinker.SamplingParams(max_tokens=2))
    assert len(ok.result().sequences[0].tokens) == 2  # the server lives on
