"""How the client commands print: rich tables for people, `--json` for scripts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def when(ts: int | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no colour codes), so `| jq` works."""
    print(json.dumps(obj, indent=2))


_TIMESTAMPS = frozenset({"created", "created_at", "finished_at", "estimated_finish"})


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    return when(value) if key in _TIMESTAMPS else str(value)


_WHOLE = frozenset({"model", "fine_tuned_model", "base_model", "training_file", "file_id"})
"""Fields holding ids users copy: never folded across lines (other columns give way)."""


def _whole(key: str) -> bool:
    return key == "id" or key.endswith("_id") or key in _WHOLE


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: str | None = None
) -> Table:
    """`columns`: (header, the row's field) pairs; timestamps are shown as UTC times. Ids stay
    whole and copyable in a narrow terminal: their columns never wrap, the others fold."""
    cells = [[_cell(row, key) for _, key in columns] for row in rows]
    out = Table(title=title)
    for i, (header, key) in enumerate(columns):
        if _whole(key):
            width = max([len(header), *(len(c[i]) for c in cells)])
            out.add_column(header, no_wrap=True, overflow="ignore", min_width=width)
        else:
            out.add_column(header, overflow="fold")
    for row in cells:
        out.add_row(*row)
    return out


def _narrowest(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> int:
    """The table's least width: id columns at their longest value, the others folded down to
    their header's width; 3 per column for borders and padding."""
    width = 1
    for header, key in columns:
        if _whole(key):
            width += max([len(header), *(len(_cell(r, key)) for r in rows)]) + 3
        else:
            width += len(header) + 3
    return width


def show_list(page: dict[str, Any], columns: Sequence[tuple[str, str]], as_json: bool) -> None:
    """A list envelope as a table of its `data`, or as the server sent it. A terminal too
    narrow for the table with its ids whole gets one `field: value` line per field instead
    (ids are what users copy: never cut or folded)."""
    if as_json:
        print_json(page)
        return
    if _narrowest(page["data"], columns) <= console.width:
        console.print(table(page["data"], columns))
        return
    for row in page["data"]:
        for header, key in columns:
            if value := _cell(row, key):
                print(f"{header}: {value}")
        print()


def fields(obj: dict[str, Any], names: Sequence[str], title: str | None = None) -> Table:
    """One object as a two-column table of the named fields that are set."""
    out = Table(title=title, show_header=False)
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for name in names:
        value = obj.get(name)
        if value in (None, [], {}):
            continue
        text = json.dumps(value) if isinstance(value, dict | list) else _cell(obj, name)
        out.add_row(name, text)
    return out


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
