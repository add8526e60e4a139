"""Time budgets for grading, so a slow grader costs a bounded share of a worker.

A grader spec comes from a client and runs on a shared worker, so grading is bounded three
ways: every regex runs on the `regex` engine with a timeout (never Python's `re`, which
cannot be interrupted); one row may take at most `row_s` (its regex timeouts shrink to what is
left of that, and a multi grader stops between sub-graders once it is spent); and a job may
spend at most `job_s` grading in all.

Budgets count CPU seconds of the grading thread (`time.thread_time`), as the `regex`
engine's timeouts count CPU time: on a loaded machine an honest row is not cut short by
time spent waiting for a core.

A row over its budget scores 0.0 (counted, and logged): one pathological sample must not stop
a training run. A job over its budget fails with GradingBudgetExceeded, whose message says
which limit to raise: a grader that is slow on every row is the client's to fix.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

REGEX_TIMEOUT_S = 0.25
"""The most one regex search may take, whatever budget is left."""

_deadline: ContextVar[float | None] = ContextVar("lathe_grading_deadline", default=None)
log = logging.getLogger(__name__)


class RowBudgetExceeded(Exception):
    """The row's grading budget is spent: it scores 0.0."""


class GradingBudgetExceeded(Exception):
    """The job's grading budget is spent: the job fails."""


def regex_timeout() -> float:
    """The timeout for the next regex search: REGEX_TIMEOUT_S, or what is left of the row's
    budget; RowBudgetExceeded once nothing is."""
    deadline = _deadline.get()
    if deadline is None:
        return REGEX_TIMEOUT_S
    left = deadline - time.thread_time()
    if left <= 0:
        raise RowBudgetExceeded
    return min(REGEX_TIMEOUT_S, left)


def regex_timed_out() -> None:
    """After a search timed out: when the row's budget had cut its timeout (less than
    REGEX_TIMEOUT_S was left), the row's budget is what ran out, so it is counted as such even
    where the engine's clock ran ahead of this thread's CPU time (a loaded machine)."""
    deadline = _deadline.get()
    if deadline is not None and deadline - time.thread_time() < REGEX_TIMEOUT_S:
        raise RowBudgetExceeded


def check_deadline() -> None:
    """Between steps of one row's grading (e.g. sub-graders): stop once the budget is spent."""
    deadline = _deadline.get()
    if deadline is not None and time.thread_time() > deadline:
        raise RowBudgetExceeded


@dataclass
class GradingBudget:
    row_s: float = 1.0
    job_s: float = 3600.0
    spent_s: float = 0.0
    overruns: int = 0
    rows: int = 0

    @classmethod
    def from_settings(cls) -> GradingBudget:
        from core.settings import get_settings

        s = get_settings()
        return cls(row_s=s.graders.row_budget_s, job_s=s.graders.job_budget_s)

    def run(self, score, *args) -> float:
        """`score(*args)` within the row budget: its value, or 0.0 if it ran over."""
        start = time.thread_time()
        token = _deadline.set(start + self.row_s)
        try:
            value = float(score(*args))
        except RowBudgetExceeded:
            value = float("nan")
        finally:
            _deadline.reset(token)
        elapsed = time.thread_time() - start
        self.rows += 1
        self.spent_s += elapsed
        if elapsed > self.row_s or value != value:  # nan: stopped at the deadline
            self.overruns += 1
            value = 0.0
            log.warning(
                "grading a row took %.2fs, over the %.2fs budget: scored 0 (%d of %d rows)",
                elapsed,
                self.row_s,
                self.overruns,
                self.rows,
            )
        if self.spent_s > self.job_s:
            raise GradingBudgetExceeded(
                f"grading took {self.spent_s:.0f}s over {self.rows} rows, more than the job's "
                f"{self.job_s:.0f}s budget (LATHE_GRADER_JOB_BUDGET_S; {self.overruns} rows "
                f"ran over the {self.row_s}s row budget, LATHE_GRADER_ROW_BUDGET_S): make the "
                "grader cheaper"
            )
        return value
