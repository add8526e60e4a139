"""How much reading one dataset may cost: the bounds that keep a hostile file from taking
the memory or the time of the process that reads it (the API on upload and dry run, the
worker at job start).

Every reader checks these while it reads, in bounded chunks, so an exceeded limit is a
dataset error naming the line (never a MemoryError or a minutes-long stall). The values come
from settings (`LATHE_MAX_LINE_BYTES`, ...); tests pass smaller ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings, get_settings

GZIP_RATIO_FLOOR = 64 * 1024**2
"""Inflated bytes below which the gzip ratio limit does not apply: a small file of repeated
lines compresses far better than 100:1 and is harmless."""


@dataclass(frozen=True)
class ReadLimits:
    max_line_bytes: int = 8 * 1024**2
    """Longest line (JSONL), record (CSV) or row (parquet), in decoded bytes."""
    max_lines: int = 5_000_000
    """Most physical lines (blank ones count: they cost reading time too) or parquet rows."""
    max_decompressed_bytes: int = 4 * 1024**3
    """Most bytes a gzip stream may inflate to, or a parquet file decode to."""
    max_gzip_ratio: float = 100.0
    """Most inflated bytes per compressed byte, once past GZIP_RATIO_FLOOR."""
    max_columns: int = 1000
    """Most CSV header names or parquet columns."""
    max_row_group_bytes: int = 256 * 1024**2
    """Largest uncompressed parquet row group, read from the footer before decoding."""

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ReadLimits:
        s = settings or get_settings()
        return cls(
            max_line_bytes=s.datasets.max_line_bytes,
            max_lines=s.datasets.max_lines,
            max_decompressed_bytes=s.datasets.max_decompressed_bytes,
            max_gzip_ratio=s.datasets.max_gzip_ratio,
            max_columns=s.datasets.max_columns,
            max_row_group_bytes=s.datasets.max_parquet_row_group_bytes,
        )

    def inflate_cap(self, compressed_bytes: int) -> int:
        """The most a gzip file of this size may inflate to."""
        by_ratio = max(int(compressed_bytes * self.max_gzip_ratio), GZIP_RATIO_FLOOR)
        return min(self.max_decompressed_bytes, by_ratio)
