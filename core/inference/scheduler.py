"""The in-process engine's scheduler: one thread that decodes requests in continuous batches.

When idle it collects requests for a few milliseconds and starts a batch of those for the same
model (or the same shared base, whatever their LoRA adapters). Between decode steps, requests
of that group that arrived meanwhile join the running batch (up to `max_batch` rows) and rows
that finished leave it (see core.inference.decode.Batch), so requests share forward passes
without waiting for each other. A batch admits no more once a request for another group is
the oldest waiting: it drains and that group goes next. Live requests go before the Batch
API's (core.inference.priority): they are taken first, and join a running batch first.

The queue is bounded (back-pressure: `Overloaded`, a 503 with Retry-After), a failure to load
one request's model fails that request only, and the engine counts what it ran (batches, the
requests each served, joins, rows per step) for the stats endpoint and the logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from core.inference.decode import BASE_ADAPTER, Batch, Row
from core.inference.errors import Overloaded
from core.inference.pool import ModelPool, Unit, adapter_name
from core.inference.priority import LIVE
from core.model_store import StoredModel

log = logging.getLogger("lathe.inference")


@dataclass
class Job:
    model: StoredModel
    row: Row
    group: str  # requests of one group may share a batch (see ModelPool.unit)
    queued_at: float = field(default_factory=time.monotonic)
    priority: int = LIVE  # BATCH: the Batch API's, served after every live request waiting


@dataclass
class Stats:
    """What the engine ran. A batch lasts from its first requests until it drains:
    `batch_sizes` counts the requests each served (joiners included), `joined` those that
    joined one already decoding, `max_batch_size` the most rows of one forward pass."""

    batches: int = 0
    requests: int = 0
    batch_sizes: Counter = field(default_factory=Counter)
    max_batch_size: int = 0
    joined: int = 0
    steps: int = 0
    step_rows: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        return {
            "batches": self.batches,
            "requests": self.requests,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "max_batch_size": self.max_batch_size,
            "joined": self.joined,
            "steps": self.steps,
            "mean_rows_per_step": round(self.step_rows / self.steps, 2) if self.steps else 0,
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
        """The first requests of a new batch: the oldest one's group, after a short window."""
        with self._ready:
            while not self._queue:
                self._ready.wait()
        time.sleep(self.window_s)  # let concurrent requests arrive and start together
        with self._ready:
            return self._pop(self._head().group, self.max_batch)

    def _head(self) -> Job:
        """The request that goes next: the oldest live one, else the oldest batch one."""
        return next((j for j in self._queue if j.priority == LIVE), self._queue[0])

    def _joiners(self, group: str, room: int) -> list[Job]:
        """Requests that may join the running batch now: none once another group waits
        longest (the batch drains so that it goes next)."""
        with self._ready:
            while self._queue and self._queue[0].row.cancelled.is_set():
                self._queue.popleft()
            if room <= 0 or not self._queue or self._head().group != group:
                return []
            return self._pop(group, room)

    def _pop(self, group: str, room: int) -> list[Job]:
        """Up to `room` requests of `group`, live ones first."""
        mine = [j for j in self._queue if j.group == group]
        jobs = sorted(mine, key=lambda j: j.priority)[:room]  # stable: oldest first in each
        for job in jobs:
            self._queue.remove(job)
        return [j for j in jobs if not j.row.cancelled.is_set()]

    def _loop(self) -> None:
        while True:
            jobs = self._take()
            if jobs:
                self._serve(jobs)

    def _serve(self, jobs: list[Job]) -> None:
        """One batch, from its first requests until it drains."""
        group, served = jobs[0].group, 0
        batch: Batch | None = None
        running: list[Job] = []
        while jobs or running:
            if jobs:
                batch, started = self._admit(batch, jobs, running)
                self._grow(served, len(started))
                served += len(started)
                if running and started:
                    self.stats.joined += len(started)
                    log.info("%d requests joined a batch of %d", len(started), len(running))
                running += started
            if batch is not None and batch.rows:
                self._step(batch)
            running = [j for j in running if batch is not None and j.row in batch.rows]
            room = self.max_batch - len(running)
            joinable = batch is None or batch.joinable or not running
            jobs = self._joiners(group, room) if joinable else []

    def _admit(
        self, batch: Batch | None, jobs: list[Job], running: list[Job]
    ) -> tuple[Batch | None, list[Job]]:
        """Load what `jobs` run on and prefill them into `batch` (made if None); returns the
        batch and the jobs it started (some may have ended on their first token). Each failure
        fails its own requests only."""
        in_use = {adapter_name(j.model) for j in running + jobs}
        self.pool.detach_forgotten(keep=in_use)
        if batch is not None and batch.shared_base:  # its base may have lost its wrapper
            batch.model = self.pool.shared_model(jobs[0].group) or batch.model
        ready: list[tuple[Job, Unit]] = []
        for job in jobs:
            try:
                ready.append((job, self.pool.unit(job.model, keep=in_use)))
            except Exception as exc:  # this request's model will not load: it alone fails
                log.warning("loading %s failed: %s", job.model.id, exc)
                self._fail([job], exc)
        if not ready:
            return batch, []
        unit = ready[-1][1]  # the last load holds every adapter the batch needs
        if not unit.batched:  # soft prompts: one at a time (their group holds only them)
            for job, u in ready:
                self._count(1)
                try:
                    self.generate_one(u, job.row)
                except Exception as exc:  # this request only
                    self._fail([job], exc)
            return batch, []
        for job, u in ready:
            job.row.adapter = u.adapter or BASE_ADAPTER
        if batch is None:
            batch = Batch(unit.tokenizer, stop_ids(unit), shared_base=unit.key.startswith("base:"))
        batch.model = unit.model  # a first adapter may have wrapped the base: the newest
        admitted = [job for job, _ in ready]
        log.info(
            "in-process batch: %d requests start on %s (%d adapters)",
            len(admitted),
            unit.key,
            len({j.row.adapter for j in admitted}),
        )
        started: list[Job] = []
        for chunk in _prefill_groups(admitted):
            try:
                batch.admit(batch.model, [j.row for j in chunk])
            except Exception as exc:  # their prefill failed: the rows decoding go on
                log.exception("prefill of %d requests failed", len(chunk))
                self._fail(chunk, exc)
                continue
            started += chunk
        batch.retire()  # a first token may have ended a row
        return batch, started

    def _step(self, batch: Batch) -> None:
        rows = len(batch.rows)
        self.stats.steps += 1
        self.stats.step_rows += rows
        self.stats.max_batch_size = max(self.stats.max_batch_size, rows)
        try:
            batch.step(batch.model)
        except Exception as exc:  # the model itself failed: this batch's rows only
            log.exception("decode step of %d rows failed", rows)
            self.stats.failed += rows
            batch.fail(exc)
            return
        batch.retire()

    def _fail(self, jobs: list[Job], exc: BaseException) -> None:
        self.stats.failed += len(jobs)
        for job in jobs:
            job.row.emit(exc)

    def _count(self, size: int) -> None:
        self._grow(0, size)

    def _grow(self, served: int, more: int) -> None:
        """A batch that had served `served` requests took `more`: counted as they start (not
        when the batch drains), so the stats already hold a request when it is answered."""
        if not more:
            return
        sizes = self.stats.batch_sizes
        if served:
            sizes[served] -= 1
            if not sizes[served]:
                del sizes[served]
        else:
            self.stats.batches += 1
        sizes[served + more] += 1
        self.stats.requests += more


def _prefill_groups(jobs: list[Job]) -> list[list[Job]]:
    """Prefills to run: the plain rows together, each prompt-scoring row on its own (it keeps
    the logits of every prompt position, prompt length x vocabulary: never a whole batch's)."""
    plain = [j for j in jobs if j.row.params.prompt_logprobs is None]
    scored = [[j] for j in jobs if j.row.params.prompt_logprobs is not None]
    return ([plain] if plain else []) + scored


def stop_ids(unit: Unit) -> set[int]:
    """The tokens that end a generation: the tokenizer's EOS and the model's configured ones."""
    ids = {unit.tokenizer.eos_token_id} - {None}
    config = getattr(unit.model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    ids |= set(eos if isinstance(eos, list) else [eos]) - {None}
    return ids
