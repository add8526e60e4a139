"""Statuses that move only along allowed transitions, in one place per kind of object.

Jobs have their own machine (core.jobs.states: leases, faults, webhooks); uploads and sweeps
use this one. A move is checked against the table whether it is made on a locked row or as a
conditional UPDATE (`WHERE status IN <allowed predecessors>`), so a race between, say, an
upload's completion and its expiry resolves in the database: one of them wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

S = TypeVar("S", bound=StrEnum)


class Lifecycle(Generic[S]):
    """The moves allowed between the statuses of one table's rows (its `status` column)."""

    def __init__(self, table: Any, moves: Mapping[S, frozenset[S]]) -> None:
        self.table = table
        self.moves = moves

    def predecessors(self, target: S) -> list[str]:
        return [source.value for source, targets in self.moves.items() if target in targets]

    def move(self, row: Any, target: S) -> None:
        """Move a row the caller holds (locked): ValueError if its status does not allow it."""
        if row.status not in self.predecessors(target):
            raise ValueError(f"{self.table.__name__} {row.id}: {row.status} → {target} not allowed")
        row.status = target.value

    def move_where(
        self, session: Session, target: S, *where: ColumnElement[bool], **values: Any
    ) -> int:
        """Move every row matching `where` whose status allows it; returns how many moved."""
        result = session.execute(
            update(self.table)
            .where(self.table.status.in_(self.predecessors(target)), *where)
            .values(status=target.value, **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount
