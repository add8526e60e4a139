"""Physical lines of a (possibly gzipped) dataset, read in bounded memory and time.

`readline` is always given a size, so a 10 GiB line costs at most `max_line_bytes` of memory
(the rest of it is skipped in chunks); a gzip stream counts what it inflates and stops at its
cap, so a zip bomb costs at most that much decompression; and the line count is capped, so a
gigabyte of gzipped newlines costs a few seconds, not ten minutes.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from core.data.limits import ReadLimits
from core.data.report import Code, DataIssue

GZIP_MAGIC = b"\x1f\x8b"
SKIP_CHUNK = 1024 * 1024


class InflateLimit(Exception):
    """The gzip stream inflated past its cap."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"inflates to more than {cap} bytes")
        self.cap = cap


class _CappedGzip(io.RawIOBase):
    """A gzip file's inflated bytes, refusing to produce more than `cap` of them."""

    def __init__(self, path: Path, cap: int) -> None:
        self._gz = gzip.open(path, "rb")  # noqa: SIM115 - closed by close()
        self._cap = cap
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # buffer: a writable memoryview
        data = self._gz.read(len(buffer))
        self._total += len(data)
        if self._total > self._cap:
            raise InflateLimit(self._cap)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gz.close()
        super().close()


def open_binary(path: Path, limits: ReadLimits) -> IO[bytes]:
    """Open for reading, inflating (within the limits) when the bytes are gzip whatever the
    name says."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic != GZIP_MAGIC:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    cap = limits.inflate_cap(path.stat().st_size)
    return io.BufferedReader(_CappedGzip(path, cap), buffer_size=SKIP_CHUNK)


def bounded_lines(f: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, bytes | DataIssue]]:
    """(1-based line number, raw bytes or the issue that line raised) per physical line.

    A too-long line is reported and skipped; too many lines or too much inflation ends the
    stream with one issue naming the line where reading stopped."""
    number = 0
    try:
        while True:
            number += 1  # the line being read
            raw = f.readline(limits.max_line_bytes + 1)
            if not raw:
                return
            if number > limits.max_lines:
                yield number, _too_many_lines(number, limits)
                return
            if len(raw) > limits.max_line_bytes and not raw.endswith(b"\n"):
                yield number, _line_too_long(number, limits)
                _skip_rest_of_line(f)
                continue
            yield number, raw
    except InflateLimit as e:
        yield number, _inflated_too_much(number, e.cap)


def _skip_rest_of_line(f: IO[bytes]) -> None:
    while chunk := f.readline(SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return


def _line_too_long(number: int, limits: ReadLimits) -> DataIssue:
    return DataIssue(
        number,
        None,
        f"line is longer than {limits.max_line_bytes} bytes (LATHE_MAX_LINE_BYTES): "
        "split it or shorten it",
        Code.LINE_TOO_LONG,
    )


def _too_many_lines(number: int, limits: ReadLimits) -> DataIssue:
    return DataIssue(
        number,
        None,
        f"the file has more than {limits.max_lines} lines (LATHE_MAX_DATASET_LINES); "
        "reading stopped here",
        Code.TOO_MANY_LINES,
    )


def _inflated_too_much(number: int, cap: int) -> DataIssue:
    return DataIssue(
        number,
        None,
        f"the gzip stream inflates to more than {cap} bytes by this line "
        "(LATHE_MAX_DECOMPRESSED_BYTES / LATHE_MAX_GZIP_RATIO); reading stopped here",
        Code.DECOMPRESSED_TOO_LARGE,
    )
