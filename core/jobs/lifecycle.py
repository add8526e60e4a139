"""What else happens when a job finishes: hooks that layers above `core.jobs` register.

A job's dependants are released here in `core.jobs.dependencies`, but a finished trial also
advances its sweep, and sweeps sit above jobs (they create jobs). Rather than jobs importing
sweeps, `core.sweeps` registers a hook on import; every process that finishes jobs (the API,
the worker, the training process) imports `core.sweeps` at its entry point. A hook runs
inside the transaction that finished the job and returns the ids of jobs to enqueue after
commit.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

FinishedHook = Callable[[Session, str, bool], list[str]]
"""(session, job id, succeeded) -> job ids to enqueue once the transaction commits."""

_finished: list[FinishedHook] = []


def on_finished(hook: FinishedHook) -> FinishedHook:
    """Register `hook` (idempotent, so a re-imported module does not run twice)."""
    if hook not in _finished:
        _finished.append(hook)
    return hook


def job_finished(session: Session, job_id: str, succeeded: bool) -> list[str]:
    """Run every registered hook for a job that just reached a terminal state."""
    ready: list[str] = []
    for hook in _finished:
        ready += hook(session, job_id, succeeded)
    return ready
