"""Parquet rows, read within core.data.limits: the footer is checked before any page is
decoded, and rows are decoded in batches sized so that no batch can blow up.

A parquet file's compressed bytes say little about its decoded size (17 KB of zstd can hold
512 MiB of one repeated string). The footer records each row group's uncompressed size, so a
row group too large to decode is refused up front. Dictionary-encoded columns decode to
(rows x value size), which the footer does not bound; the batch size is chosen so that even if
every row held the column chunk's largest possible value, a batch stays within a budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.data.limits import ReadLimits
from core.data.report import Code, DataIssue, Record

PARQUET_BATCH_ROWS = 1024
"""Rows per decoded batch when nothing in the row group calls for fewer."""


def read_parquet(path: Path, limits: ReadLimits) -> Iterator[Any]:
    """Every row as a Record (line = row index + 1), or the issue that
    ended reading."""
    import pyarrow as pa  # lazy: pyarrow is slow to import and only parquet needs it
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        if issue := footer_issue(pf.metadata, limits):
            yield issue
            return
        number = decoded = 0
        for index in range(pf.num_row_groups):
            rows = batch_rows(pf.metadata.row_group(index), limits)
            for batch in pf.iter_batches(batch_size=rows, row_groups=[index]):
                decoded += batch.nbytes
                if decoded > limits.max_decompressed_bytes:
                    yield _decoded_too_much(number + 1, limits)
                    return
                for row in batch.to_pylist():
                    number += 1
                    # Parquet columns exist in every row; a null means the field is absent.
                    yield Record(number, {k: v for k, v in row.items() if v is not None})
    except (pa.ArrowException, OSError, ValueError) as e:
        yield DataIssue(0, None, f"cannot read the parquet file: {e}", Code.INVALID_PARQUET)


def footer_issue(meta: Any, limits: ReadLimits) -> DataIssue | None:
    """What the footer alone shows to be too large: columns, rows, a row group's size."""
    if meta.num_columns > limits.max_columns:
        return DataIssue(
            0,
            None,
            f"the file has {meta.num_columns} columns, more than {limits.max_columns} "
            "(LATHE_MAX_DATASET_COLUMNS)",
            Code.TOO_MANY_COLUMNS,
        )
    if meta.num_rows > limits.max_lines:
        return DataIssue(
            limits.max_lines + 1,
            None,
            f"the file has {meta.num_rows} rows, more than {limits.max_lines} "
            "(LATHE_MAX_DATASET_LINES)",
            Code.TOO_MANY_LINES,
        )
    first = 1
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        size = max(group.total_byte_size, _uncompressed(group))
        if size > limits.max_row_group_bytes:
            return DataIssue(
                first,
                None,
                f"row group {index} (rows {first}-{first + group.num_rows - 1}) decodes to "
                f"{size} bytes, more than {limits.max_row_group_bytes} "
                "(LATHE_MAX_PARQUET_ROW_GROUP_BYTES); write the file with smaller row groups",
                Code.ROW_GROUP_TOO_LARGE,
            )
        first += group.num_rows
    return None


def batch_rows(group: Any, limits: ReadLimits) -> int:
    """Rows per batch for this row group: plain-encoded columns decode to at most their
    chunk's size (bounded by the footer check), but a dictionary-encoded one to up to rows x
    its largest value, itself at most the chunk's uncompressed size."""
    per_row = sum(
        group.column(j).total_uncompressed_size
        for j in range(group.num_columns)
        if group.column(j).has_dictionary_page
    )
    budget = 4 * limits.max_line_bytes
    return max(1, min(PARQUET_BATCH_ROWS, budget // max(per_row, 1)))


def _uncompressed(group: Any) -> int:
    return sum(group.column(j).total_uncompressed_size for j in range(group.num_columns))


def _decoded_too_much(number: int, limits: ReadLimits) -> DataIssue:
    return DataIssue(
        number,
        None,
        f"the file decodes to more than {limits.max_decompressed_bytes} bytes by this row "
        "(LATHE_MAX_DECOMPRESSED_BYTES); reading stopped here",
        Code.DECOMPRESSED_TOO_LARGE,
    )
