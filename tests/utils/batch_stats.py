"""Reading the in-process engine's batch counts between two snapshots of its stats."""

from __future__ import annotations


def grown(before: dict[str, int], after: dict[str, int]) -> dict[int, int]:
    """How many more batches of each size `after` counts than `before` (negative where a
    batch that had started before grew into a larger one: it is counted at its new size)."""
    return {int(k): after.get(k, 0) - before.get(k, 0) for k in {*before, *after}}


def served(before: dict[str, int], after: dict[str, int]) -> int:
    """Requests the batches counted between the two snapshots served."""
    return sum(size * n for size, n in grown(before, after).items())


def largest(before: dict[str, int], after: dict[str, int]) -> int:
    """The size of the largest batch counted since `before`."""
    return max((size for size, n in grown(before, after).items() if n > 0), default=0)
