"""Cursor pagination in OpenAI's style (`after=<id>&limit=N` → `data`, `has_more`)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

T = TypeVar("T")


def page(
    session: Session, query: Select[Any], table: Any, cursor: Any | None, limit: int, desc: bool
) -> tuple[list[Any], bool]:
    """Order by (created_at, id); `cursor` is the row named by `after`."""
    key = tuple_(table.created_at, table.id)
    if cursor is not None:
        here = tuple_(cursor.created_at, cursor.id)
        query = query.where(key < here if desc else key > here)
    ordering = (table.created_at.desc(), table.id.desc()) if desc else (table.created_at, table.id)
    rows = list(session.scalars(query.order_by(*ordering).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
