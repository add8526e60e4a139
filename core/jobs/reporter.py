"""The worker's line back to the job row: events in, cancellation out."""

from __future__ import annotations

import time
from typing import Any

from core.jobs.events import add_event, metrics_message
from core.jobs.states import JobStatus
from core.persistence.db import session_scope
from core.persistence.models import Job


class JobReporter:
    """Each event is its own short transaction, so the API sees progress as it happens."""

    def __init__(self, database_url: str, job_id: str, poll_interval_s: float = 1.0):
        self.url = database_url
        self.job_id = job_id
        self.poll_interval_s = poll_interval_s
        self._last_poll = 0.0
        self._stop = False

    def message(self, text: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        with session_scope(self.url) as session:
            add_event(session, self.job_id, text, level=level, data=data)

    def metrics(self, data: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            add_event(session, self.job_id, metrics_message(data), type="metrics", data=data)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last_poll >= self.poll_interval_s:
            self._last_poll = now
            with session_scope(self.url) as session:
                status = session.get(Job, self.job_id).status  # type: ignore[union-attr]
            self._stop = status != JobStatus.RUNNING.value
        return self._stop
