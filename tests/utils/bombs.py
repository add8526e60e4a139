"""Hostile dataset files, made small and fast: each is generated in well under a second and
a few MB at most, without ever holding its inflated or decoded size in memory."""

from __future__ import annotations

import gzip
from pathlib import Path

MEMBER = 64 * 1024**2


def gzip_bomb(path: Path, inflated: int, unit: bytes) -> Path:
    """A gzip file that inflates to `unit` repeated over about `inflated` bytes: one
    compressed ~64 MiB member written again and again (a multi-member gzip is still one
    stream to every reader), ~1 KB per 1 MB."""
    per_member = max(1, MEMBER // len(unit))
    member = gzip.compress(unit * per_member, compresslevel=9, mtime=0)
    count, rest = divmod(inflated // len(unit), per_member)
    with open(path, "wb") as f:
        for _ in range(count):
            f.write(member)
        if rest:
            f.write(gzip.compress(unit * rest, compresslevel=9, mtime=0))
    return path


def one_line_bomb(path: Path, inflated: int = 10 * 1024**3) -> Path:
    """`{"text": "aaaa…` with no newline: one line as long as the whole file (10 GiB from
    ~10 MB by default)."""
    member = gzip.compress(b'{"text": "', mtime=0)
    gzip_bomb(path, inflated, b"a")
    path.write_bytes(member + path.read_bytes())
    return path


def newline_bomb(path: Path, inflated: int = 1024**3) -> Path:
    """`inflated` bytes of newlines (1 GiB from ~1 MB by default): a billion empty lines."""
    return gzip_bomb(path, inflated, b"\n")


def parquet_bomb(path: Path, decoded: int = 512 * 1024**2) -> Path:
    """A zstd parquet file (~20 KB) whose one row group decodes to `decoded` bytes: the same
    1 MiB string in every row, written plain (no dictionary) from one shared buffer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    value = pa.array(["a" * 1024**2])
    column = pa.chunked_array([value] * (decoded // 1024**2))
    pq.write_table(
        pa.table({"text": column}),
        path,
        compression="zstd",
        use_dictionary=False,
        row_group_size=10**9,
    )
    return path


def csv_wide_header(path: Path, columns: int = 200_000) -> Path:
    """A CSV whose header has `columns` names, every one of them `c` (so all duplicates),
    and one row."""
    path.write_text(",".join(["c"] * columns) + "\n" + ",".join(["x"] * columns) + "\n")
    return path
