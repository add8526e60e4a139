"""A trainer killed with a request in flight: the SDK sees that request's future fail with a
message saying what was lost (never a hang), and the state saved before loads on another
trainer and gives the same loss."""

from __future__ import annotations

import os
import secrets
import signal

import numpy as np
import pytest

from tests.tinker.conftest import COOKBOOK_BASE, AliasLathe
from tests.utils.processes import run_lathe
from tests.utils.stack import Stack


def _datum():
    import tinker

    tokens = list(range(5, 40))
    return tinker.Datum(
        model_input=tinker.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": np.array(tokens[1:], dtype=np.int64),
            "weights": np.ones(len(tokens) - 1, dtype=np.float32),
        },
    )


def test_killed_trainer_fails_the_future_and_saved_state_loads(
    alias_lathe: AliasLathe, stack: Stack
):
    import tinker

    key = run_lathe(stack.env, "keys", "create", "--org", f"tk-{secrets.token_hex(3)}").strip()
    doomed = alias_lathe.start_trainer("doomed", LATHE_TINKER_LEASE_S="3")
    service = tinker.ServiceClient(base_url=alias_lathe.url, api_key=key)
    heir = None
    try:
        training = service.create_lora_training_client(
            base_model=COOKBOOK_BASE, rank=4, seed=3
        ).result()
        training.forward_backward([_datum()], "cross_entropy").result()
        training.optim_step(tinker.AdamParams(learning_rate=1e-2)).result()
        saved = training.save_state("before-the-crash").result().path
        expected = training.forward([_datum()], "cross_entropy").result().metrics["loss:sum"]

        os.killpg(doomed.popen.pid, signal.SIGSTOP)  # it cannot answer what comes next...
        in_flight = training.forward_backward([_datum()], "cross_entropy")
        os.killpg(doomed.popen.pid, signal.SIGKILL)  # ...and dies with it unanswered
        with pytest.raises(tinker.RequestFailedError, match="stopped.*unsaved weights are lost"):
            in_flight.result(timeout=120)

        heir = alias_lathe.start_trainer("heir")
        resumed = service.create_training_client_from_state_with_optimizer(saved).result()
        loss = resumed.forward([_datum()], "cross_entropy").result().metrics["loss:sum"]
        assert loss == pytest.approx(expected, rel=1e-5)
    finally:
        service.close("success").result()
        doomed.stop()
        if heir is not None:
            heir.stop()
