"""Waiting on a condition, the one way tests wait: poll until it holds, fail naming it."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """`predicate()`'s first truthy value, polled every `interval` s; TimeoutError naming
    `what` if none comes within `timeout` s (a guard against a hang, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not after {timeout}s")
