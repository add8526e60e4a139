"""The in-process engine's scheduler: one thread that collects requests for a few
milliseconds and runs those for the same model (or the same shared base, whatever their
LoRA adapters) as one batch, so concurrent requests share each forward pass.

The queue is bounded (back-pressure: `Overloaded`, a 503 with Retry-After), a failure to load
one request's model fails that request only, and the batch sizes run are counted for the
stats endpoint and the logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from core.inference.decode import BASE_ADAPTER, Row, decode_batch
from core.inference.errors import Overloaded
from core.inference.pool import ModelPool, Unit
from core.model_store import StoredModel

log = logging.getLogger("lathe.inference")


@dataclass
class Job:
    model: StoredModel
    row: Row
    group: str  # requests of one group may share a batch (see ModelPool.unit)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class Stats:
    batches: int = 0
    requests: int = 0
    batch_sizes: Counter = field(default_factory=Counter)
    max_batch_size: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        return {
            "batches": self.batches,
            "requests": self.requests,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "max_batch_size": self.max_batch_size,
            "failed": self.failed,
        }


class Scheduler:
    def __init__(
        self,
        pool: ModelPool,
        window_s: float,
        max_batch: int,
        max_queue: int,
        generate_one: Callable[[Unit, Row], None],
    ):
        self.pool, self.window_s, self.max_batch, self.max_queue = (
            pool,
            window_s,
            max_batch,
            max_queue,
        )
        self.generate_one = generate_one  # soft prompts: no batched decode loop
        self.stats = Stats()
        self._queue: deque[Job] = deque()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="lathe-scheduler", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._ready:
            if len(self._queue) >= self.max_queue:
                raise Overloaded(
                    f"the inference engine has {len(self._queue)} requests waiting; retry shortly"
                )
            self._queue.append(job)
            self._ready.notify()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def _take(self) -> list[Job]:
        with self._ready:
            while not self._queue:
                self._ready.wait()
        time.sleep(self.window_s)  # let concurrent requests arrive and join the batch
        with self._ready:
            group = self._queue[0].group
            batch = [j for j in self._queue if j.group == group][: self.max_batch]
            for job in batch:
                self._queue.remove(job)
        return [j for j in batch if not j.row.cancelled.is_set()]

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch:
                try:
                    self._run(batch)
                except Exception as exc:  # the model itself failed: this batch only
                    log.exception("batch of %d failed", len(batch))
                    self.stats.failed += len(batch)
                    for job in batch:
                        job.row.emit(exc)

    def _run(self, batch: list[Job]) -> None:
        self.pool.detach_forgotten()
        keep = {j.model.id for j in batch}
        ready: list[tuple[Job, Unit]] = []
        for job in batch:
            try:
                ready.append((job, self.pool.unit(job.model, keep=keep)))
            except Exception as exc:  # this request's model will not load: it alone fails
                log.warning("loading %s failed: %s", job.model.id, exc)
                self.stats.failed += 1
                job.row.emit(exc)
        if not ready:
            return
        unit = ready[-1][1]  # the last load holds every adapter the batch needs
        if not unit.batched:
            for job, u in ready:
                self._count(1)
                try:
                    self.generate_one(u, job.row)
                except Exception as exc:  # this request only
                    self.stats.failed += 1
                    job.row.emit(exc)
            return
        mixed = hasattr(unit.model, "peft_config")
        for job, u in ready:
            job.row.adapter = u.adapter or BASE_ADAPTER
        self._count(len(ready))
        log.info(
            "in-process batch: %d requests on %s (%d adapters)",
            len(ready),
            unit.key,
            len({j.row.adapter for j, _ in ready}),
        )
        decode_batch(unit.model, unit.tokenizer, [j.row for j, _ in ready], stop_ids(unit), mixed)

    def _count(self, size: int) -> None:
        self.stats.batches += 1
        self.stats.requests += size
        self.stats.batch_sizes[size] += 1
        self.stats.max_batch_size = max(self.stats.max_batch_size, size)


def stop_ids(unit: Unit) -> set[int]:
    """The tokens that end a generation: the tokenizer's EOS and the model's configured ones."""
    ids = {unit.tokenizer.eos_token_id} - {None}
    config = getattr(unit.model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    ids |= set(eos if isinstance(eos, list) else [eos]) - {None}
    return ids
