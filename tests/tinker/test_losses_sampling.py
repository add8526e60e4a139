"""Forward, every server-side loss and sampling through the real `tinker` SDK, checked against
the SDK's documented math on the logprobs the server itself reports."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tinker.test_training_loop import BASE, datum

TOKENS = list(range(20, 44))


@pytest.fixture(scope="module")
def client(connect, org_key):
    service = connect(org_key())
    return service, service.create_lora_training_client(base_model=BASE, rank=4, seed=1).result()


def _rl_datum(lp_q: np.ndarray, adv: np.ndarray):
    import tinker

    return tinker.Datum(
        model_input=tinker.ModelInput.from_ints(TOKENS[:-1]),
        loss_fn_inputs={
            "target_tokens": np.array(TOKENS[1:], dtype=np.int64),
            "logprobs": lp_q.astype(np.float32),
            "advantages": adv.astype(np.float32),
        },
    )


def test_forward_losses_and_logprobs(client):
    """forward == forward_backward logprobs; IS/PPO/CISPO/DRO losses are the documented
    token-level sums; compute_logprobs on the same weights equals forward's logprobs."""
    _, tc = client
    fwd = tc.forward([datum(TOKENS)], "cross_entropy").result()
    lp = np.array(fwd.loss_fn_outputs[0]["logprobs"].tolist())
    assert fwd.metrics["loss:sum"] == pytest.approx(-lp.sum(), rel=1e-5)
    rng = np.random.default_rng(0)
    q = lp + rng.normal(0, 0.3, lp.shape)
    adv = rng.normal(0, 1, lp.shape)
    r = np.exp(lp - q)
    expected = {
        "importance_sampling": -(r * adv).sum(),
        "ppo": -np.minimum(r * adv, np.clip(r, 0.9, 1.1) * adv).sum(),
        "cispo": -(np.clip(r, 0.9, 1.1) * lp * adv).sum(),
        "dro": -(lp * adv - 0.5 * 0.1 * (lp - q) ** 2).sum(),
    }
    configs = {
        "ppo": {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1},
        "cispo": {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1},
        "dro": {"beta": 0.1},
    }
    for loss, want in expected.items():
        out = tc.forward([_rl_datum(q, adv)], loss, configs.get(loss)).result()
        assert out.metrics["loss:sum"] == pytest.approx(want, rel=1e-4), loss
    fb = tc.forward_backward([datum(TOKENS)], "cross_entropy").result()
    np.testing.assert_allclose(fb.loss_fn_outputs[0]["logprobs"].tolist(), lp, rtol=1e-5)
    sampler = tc.save_weights_and_get_sampling_client().result()
    prompt_lp = sampler.compute_logprobs(__import__("tinker").ModelInput.from_ints(TOKENS)).result()
    assert prompt_lp[0] is None
    np.testing.assert_allclose(prompt_lp[1:], lp, rtol=1e-4, atol=1e-5)


def test_custom_loss_with_negative_weights(client):
    """forward_backward_custom runs on the client over cross_entropy with weights -dC/dlp
    (here negative), then optim_step applies it."""
    import tinker

    service, _ = client
    tc = service.create_lora_training_client(base_model=BASE, rank=4, seed=2).result()

    def loss_fn(data, logprobs_list):  # minimising it LOWERS the logprobs: weights are -0.5
        loss = sum((lp * 0.5).sum() for lp in logprobs_list)
        return loss, {"custom:sum": loss.item()}

    before = tc.forward([datum(TOKENS)], "cross_entropy").result().metrics["loss:sum"]
    out = tc.forward_backward_custom([datum(TOKENS)], loss_fn).result()
    assert out.metrics["custom:sum"] == pytest.approx(-0.5 * before, rel=1e-4)
    tc.optim_step(tinker.AdamParams(learning_rate=1e-2)).result()
    after = tc.forward([datum(TOKENS)], "cross_entropy").result().metrics["loss:sum"]
    assert after > before  # the negative weights pushed the logprobs down


def test_sampling(client):
    import tinker

    service, tc = client
    base = service.create_sampling_client(base_model=BASE).result()
    prompt = tinker.ModelInput.from_ints(TOKENS[:6])
    params = tinker.SamplingParams(max_tokens=6, seed=5, temperature=1.0, top_p=0.9, top_k=50)
    a = base.sample(prompt, 3, params).result()
    b = base.sample(prompt, 3, params).result()
    assert [s.tokens for s in a.sequences] == [s.tokens for s in b.sequences]  # seeded
    assert len({s.sequence_id for s in a.sequences}) == 3
    for s in a.sequences:
        assert len(s.tokens) == len(s.logprobs) <= 6 and s.stop_reason in ("length", "stop")
    greedy = base.sample(prompt, 1, tinker.SamplingParams(max_tokens=6, temperature=0)).result()
    first = greedy.sequences[0].tokens
    stop = tinker.SamplingParams(max_tokens=6, temperature=0, stop=[first[1]])
    stopped = base.sample(prompt, 1, stop).result().sequences[0]
    assert stopped.tokens == first[:2] and stopped.stop_reason == "stop"  # includes the stop
    top1 = base.sample(prompt, 2, tinker.SamplingParams(max_tokens=6, top_k=1, seed=9)).result()
    assert all(s.tokens == first for s in top1.sequences)
