"""The median stopping rule (Golovin et al. 2017, Google Vizier, https://research.google/pubs/pub46180/;
Optuna's MedianPruner): stop a trial at step s when its best objective so far is worse than
the median of what the other trials had reached by step s.

Only trials that have themselves reported by step s count, and the rule waits for
`min_trials` of them and for `warmup_steps`: an early median of one or two noisy curves would
stop good trials by chance.
"""

from __future__ import annotations

import statistics

Curve = list[tuple[int, float]]
"""(step, objective) pairs in step order."""


def best_by(curve: Curve, step: int, goal: str) -> float | None:
    values = [v for s, v in curve if s <= step]
    if not values:
        return None
    return min(values) if goal == "minimize" else max(values)


def should_stop(
    curve: Curve, others: list[Curve], goal: str, min_trials: int, warmup_steps: int
) -> bool:
    """True when `curve`'s trial is clearly worse than the median of `others` at its last step."""
    if not curve:
        return False
    step = curve[-1][0]
    if step < warmup_steps:
        return False
    mine = best_by(curve, step, goal)
    reached = [best_by(c, step, goal) for c in others]
    values = [v for v in reached if v is not None]
    if len(values) < min_trials or mine is None:
        return False
    median = statistics.median(values)
    return mine > median if goal == "minimize" else mine < median
