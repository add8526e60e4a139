"""A trainer that stops renewing its clients' leases (as a killed one does): the SDK's next
future fails with a message saying the unsaved weights are lost, never a hang, and the
client's saved state loads on a trainer that is alive, with the same weights."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import update

from tests.tinker.test_training_loop import BASE, datum

TOKENS = list(range(30, 50))


def test_lost_trainer_fails_futures_and_saved_state_survives(connect, org_key, stack):
    import tinker

    from core.persistence.db import session_scope
    from core.persistence.models import utcnow
    from core.persistence.tinker_models import TinkerModel

    service = connect(org_key())
    client = service.create_lora_training_client(base_model=BASE, rank=2, seed=4).result()
    client.forward_backward([datum(TOKENS)], "cross_entropy").result()
    client.optim_step(tinker.AdamParams(learning_rate=1e-2)).result()
    path = client.save_state("before-crash").result().path
    saved = client.forward([datum(TOKENS)], "cross_entropy").result().metrics["loss:sum"]
    with session_scope(stack.env["LATHE_DATABASE_URL"]) as db:  # its trainer is gone
        db.execute(
            update(TinkerModel)
            .where(TinkerModel.id == client.model_id)
            .values(worker="crashed-host:1", lease_until=utcnow())
        )
    with pytest.raises(tinker.RequestFailedError, match="unsaved weights are lost"):
        client.forward([datum(TOKENS)], "cross_entropy").result()
    resumed = service.create_training_client_from_state(path).result()
    loss = resumed.forward([datum(TOKENS)], "cross_entropy").result().metrics["loss:sum"]
    np.testing.assert_allclose(loss, saved, rtol=1e-5)
