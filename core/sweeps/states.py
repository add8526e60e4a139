"""A sweep's statuses: running until every trial has finished (succeeded if one of them is
the best trial, else failed), or cancelled by its owner."""

from __future__ import annotations

from enum import StrEnum

from core.persistence.lifecycle import Lifecycle
from core.persistence.models import Sweep


class SweepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


SWEEPS = Lifecycle(
    Sweep,
    {
        SweepStatus.RUNNING: frozenset(
            {SweepStatus.SUCCEEDED, SweepStatus.FAILED, SweepStatus.CANCELLED}
        )
    },
)
