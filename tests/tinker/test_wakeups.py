"""Results travel by NOTIFY, not by polling: the trainer announces every request it finishes
on DONE_CHANNEL after its commit, and the API's one listener connection wakes exactly the
long-polls watching that request."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import create_engine, select

from core.persistence.tinker_models import TinkerRequest
from core.tinker import wakeups
from tests.tinker.test_training_loop import datum
from tests.utils.stack import Stack


def test_listener_wakes_only_the_watched_request(stack: Stack):
    url = stack.env["LATHE_DATABASE_URL"]

    async def scenario() -> tuple[bool, bool]:
        listener = wakeups.DoneListener(url)
        assert await listener.start()
        try:
            with listener.watch("tr_mine") as mine, listener.watch("tr_other") as other:
                with psycopg.connect(wakeups.libpq_url(url), autocommit=True) as conn:
                    conn.execute("SELECT pg_notify(%s, 'tr_mine')", (wakeups.DONE_CHANNEL,))
                await asyncio.wait_for(mine.wait(), 30)  # a hang guard: it comes at once
                return mine.is_set(), other.is_set()
        finally:
            await listener.close()

    assert asyncio.run(scenario()) == (True, False)


def test_trainer_announces_each_result_after_commit(service, stack: Stack):
    import tinker

    url = stack.env["LATHE_DATABASE_URL"]
    conn = wakeups.listen(url, wakeups.DONE_CHANNEL)
    try:
        client = service.create_lora_training_client(base_model="tiny-llama", rank=2).result()
        client.forward_backward([datum(list(range(5, 30)))], "cross_entropy").result()
        client.optim_step(tinker.AdamParams(learning_rate=1e-3)).result()
        engine = create_engine(url)
        with engine.connect() as db:
            rows = db.execute(
                select(TinkerRequest.id, TinkerRequest.status).where(
                    TinkerRequest.model_id == client.model_id
                )
            ).all()
        engine.dispose()
        assert sorted(status for _, status in rows) == ["done"] * 3  # create, fwd/bwd, optim
        # the NOTIFYs were queued on this connection as the results were committed
        wanted, announced = {rid for rid, _ in rows}, set()
        for note in conn.notifies(timeout=30):  # a hang guard: they are already here
            announced.add(note.payload)
            if wanted <= announced:
                break
        assert wanted <= announced
    finally:
        conn.close()
