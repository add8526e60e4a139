"""Batch API requests wait behind live ones in the in-process engine's queue: the next batch
starts with the oldest live request's group, and room in a running batch goes to live
requests first (core.inference.priority, core.inference.scheduler)."""

from __future__ import annotations

import threading
from collections import deque

from core.inference.decode import Row
from core.inference.params import GenerationParams
from core.inference.priority import BATCH, LIVE
from core.inference.scheduler import Job, Scheduler
from core.model_store import StoredModel


def idle_scheduler() -> Scheduler:
    """The queue logic alone: no scheduler thread takes the jobs we put in."""
    s = Scheduler.__new__(Scheduler)
    s._queue, s._ready, s.max_queue = deque(), threading.Condition(), 100
    return s


def job(group: str, priority: int) -> Job:
    row = Row(prompt=[1], params=GenerationParams(), emit=lambda _: None)
    return Job(StoredModel(group, group), row, group, priority=priority)


def test_live_requests_go_first():
    s = idle_scheduler()
    old_batch, batch_b, live_b, live_a = (
        job("a", BATCH),
        job("b", BATCH),
        job("b", LIVE),
        job("a", LIVE),
    )
    for j in (old_batch, batch_b, live_b, live_a):
        s.submit(j)
    assert s._head() is live_b  # the oldest live request, though batch ones are older
    assert s._pop("b", 1) == [live_b]  # room for one: the live one, not the older batch one
    assert s._joiners("b", 4) == []  # a live request of group a waits: b drains first
    assert s._pop("a", 4) == [live_a, old_batch]
    assert s._head() is batch_b and s._joiners("b", 4) == [batch_b]  # only batch ones left
