"""A job's trackers, between the training loop and the job: everything the loop reports
(`metrics`, `resolved`) reaches the job's reporter first and each tracker too.

A tracker that fails mid-run (a tracking server gone away) is dropped with a warning event
on the job: the training goes on, and the job says what it lost.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.integrations import spec as integration_spec
from core.integrations.trackers import RunInfo, Tracker, make
from core.settings import Settings

log = logging.getLogger(__name__)


class IntegrationError(Exception):
    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


class TrackedReporter:
    """Wraps a `core.jobspec.recipe.Reporter`; anything it does not override is the inner's."""

    def __init__(self, inner: Any, trackers: list[Tracker]):
        self.inner = inner
        self.trackers = trackers

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def metrics(self, data: dict[str, Any]) -> None:
        self.inner.metrics(data)
        values = {
            k: float(v)
            for k, v in data.items()
            if k not in ("step", "total_steps") and isinstance(v, int | float)
            and not isinstance(v, bool)
        }  # fmt: skip
        self._each(lambda t: t.metrics(int(data["step"]), values))

    def resolved(self, hyperparameters: dict[str, Any]) -> None:
        self.inner.resolved(hyperparameters)
        self._each(lambda t: t.params(hyperparameters))

    def _each(self, call) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as exc:
                log.warning("%s failed", tracker.label, exc_info=True)
                self.trackers.remove(tracker)
                self.inner.message(
                    f"{tracker.label}: logging failed ({type(exc).__name__}: {exc}); "
                    "training goes on without it",
                    level="warning",
                )

    def finish(self, outcome: str) -> list[Path]:
        """Finish every tracker; the files they leave to keep as job results."""
        kept = []
        for tracker in self.trackers:
            try:
                if (path := tracker.finish(outcome)) is not None:
                    kept.append(path)
            except Exception as exc:
                log.warning("%s did not finish", tracker.label, exc_info=True)
                self.inner.message(f"{tracker.label}: could not finish ({exc})", level="warning")
        return kept


def start(
    settings: Settings, entries: list[dict[str, Any]] | None, run: RunInfo, reporter: Any
) -> TrackedReporter:
    """Start a tracker per entry (IntegrationError naming the entry when one cannot)."""
    trackers: list[Tracker] = []
    for i, item in enumerate(integration_spec.parse(entries, settings)):
        tracker = make(i, item, settings)
        try:
            tracker.start(run)
        except Exception as exc:
            for started in trackers:
                started.finish("failed")
            raise IntegrationError(
                f"{tracker.label} could not start: {type(exc).__name__}: {exc}",
                f"integrations.{i}",
            ) from exc
        trackers.append(tracker)
    if trackers:
        names = ", ".join(t.label for t in trackers)
        reporter.message(f"Logging metrics and hyperparameters to {names}")
    return TrackedReporter(reporter, trackers)
