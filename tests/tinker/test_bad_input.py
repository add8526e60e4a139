"""Bad input through the real SDK: each a clear error naming the field, never a hang, and the
server keeps serving."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.tinker.test_training_loop import BASE, datum

TOKENS = list(range(20, 40))


@pytest.fixture
def service(connect, org_key):
    """An organization per test: live training clients are bounded per organization."""
    return connect(org_key())


def _client(service):
    return service.create_lora_training_client(base_model=BASE, rank=2).result()


def test_submit_time_errors(service):
    import tinker

    tc = _client(service)
    bad_len = tinker.Datum(
        model_input=tinker.ModelInput.from_ints(TOKENS),
        loss_fn_inputs={"target_tokens": np.array(TOKENS[:5], dtype=np.int64)},
    )
    with pytest.raises(tinker.BadRequestError, match="target_tokens has 5 elements"):
        tc.forward_backward([bad_len], "cross_entropy").result()
    tc = _client(service)  # a failed request poisons a TrainingClient
    bad_dtype = tinker.Datum(
        model_input=tinker.ModelInput.from_ints(TOKENS),
        loss_fn_inputs={"target_tokens": np.array(TOKENS, dtype=np.float32)},
    )
    with pytest.raises(tinker.BadRequestError, match="target_tokens must be int64"):
        tc.forward_backward([bad_dtype], "cross_entropy").result()
    tc = _client(service)
    with pytest.raises(tinker.BadRequestError, match="unsupported loss_fn 'gspo'"):
        tc.forward_backward([datum(TOKENS)], "gspo").result()


def test_future_errors(service):
    import tinker

    tc = _client(service)
    with pytest.raises(tinker.RequestFailedError, match="no gradients accumulated"):
        tc.optim_step(tinker.AdamParams()).result()
    tc = _client(service)
    long = list(range(20, 20 + 600))  # the tiny model's context is 512
    with pytest.raises(tinker.RequestFailedError, match=r"data\[0\].model_input has 599 tokens"):
        tc.forward([datum(long)], "cross_entropy").result()
    # the server is not poisoned: a fresh client still trains
    ok = service.create_lora_training_client(base_model=BASE, rank=2).result()
    fb = ok.forward_backward([datum(TOKENS)], "cross_entropy").result()
    assert fb.metrics["loss:sum"] > 0


def test_another_organizations_future_is_not_found(tinker_url, org_key):
    """Raw wire: org A's request id, polled with org B's key, is a 404 as a made-up one."""
    a, b = ({"X-API-Key": org_key()} for _ in range(2))
    api = f"{tinker_url}/api/v1"
    sid = httpx.post(f"{api}/create_session", headers=a, json={}).json()["session_id"]
    body = {"session_id": sid, "model_seq_id": 0, "base_model": BASE, "lora_config": {"rank": 2}}
    rid = httpx.post(f"{api}/create_model", headers=a, json=body).json()["request_id"]
    for headers, request_id in ((b, rid), (a, "tr_made_up")):
        got = httpx.post(f"{api}/retrieve_future", headers=headers, json={"request_id": request_id})
        assert got.status_code == 404 and "no future" in got.json()["error"]["message"]
    mine = httpx.post(f"{api}/retrieve_future", headers=a, json={"request_id": rid}, timeout=60)
    assert mine.json()["model_id"] == f"{sid}:train:0"
