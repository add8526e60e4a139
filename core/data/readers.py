"""Stream raw records out of uploaded files: JSONL (optionally gzipped), CSV and parquet.

Readers yield one `Record` per row, or a `DataIssue` where a row cannot be read, and never
hold the file in memory: uploads can be many gigabytes and validation runs in the API
process. Which format the records are in is not their concern (see formats.py).

Line numbers: JSONL counts physical lines (blank lines are skipped but counted); CSV gives
the physical line where the row starts, the header being line 1, as a text editor shows it;
parquet gives the row index + 1.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.data.report import Code, DataIssue

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_BATCH_ROWS = 1024
CSV_FIELD_LIMIT = 64 * 1024 * 1024

# CSV cells are strings; these columns hold JSON (a list or object) and are decoded.
CSV_JSON_COLUMNS = frozenset(
    {
        "messages",
        "conversations",
        "tools",
        "preferred_output",
        "non_preferred_output",
        "completions",
        "ranking",
    }
)
# These may be plain text or JSON (DPO `input`, message-list `prompt`/`chosen`/`rejected`):
# decoded only when they look like a JSON list/object and parse as one.
CSV_MAYBE_JSON_COLUMNS = frozenset({"input", "prompt", "chosen", "rejected"})
# Optional columns: an empty cell means "absent", since a CSV row cannot omit a column.
CSV_OPTIONAL_COLUMNS = frozenset({"input", "text_pair", "reference", "reference_answer", "tools"})


@dataclass(frozen=True)
class Record:
    line: int
    data: dict[str, Any]


Row = Record | DataIssue


def container_of(filename: str) -> tuple[str, bool] | None:
    """('jsonl' | 'csv' | 'parquet', gzipped) from the upload's name, or None if unsupported."""
    name = filename.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    if name.endswith((".jsonl", ".json")):
        return "jsonl", gz
    if name.endswith(".csv"):
        return "csv", gz
    if name.endswith(".parquet") and not gz:
        return "parquet", False
    return None


def read_records(path: Path, filename: str) -> Iterator[Row]:
    """Every row of the file, in order. Fatal problems (bad gzip, bad parquet) end the stream
    with one issue; per-row problems yield an issue and reading goes on."""
    kind = container_of(filename)
    if kind is None:
        yield DataIssue(
            0,
            None,
            f"unsupported file type {filename!r}: use .jsonl, .jsonl.gz, .csv or .parquet",
            Code.UNSUPPORTED_FILE_TYPE,
        )
        return
    container, _ = kind
    if container == "parquet":
        yield from _read_parquet(path)
        return
    with _open_binary(path) as f:
        try:
            if container == "jsonl":
                yield from _read_jsonl(f)
            else:
                yield from _read_csv(f)
        except (OSError, EOFError) as e:  # truncated or corrupt gzip stream
            yield DataIssue(0, None, f"cannot read the file: {e}", Code.READ_ERROR)


def _open_binary(path: Path) -> IO[bytes]:
    """Open for reading, decompressing when the bytes are gzip whatever the name says."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")  # noqa: SIM115


class _Undecodable(Exception):
    def __init__(self, issue: DataIssue) -> None:
        self.issue = issue


def _lines(f: IO[bytes]) -> Iterator[tuple[int, str | DataIssue]]:
    """(1-based line number, decoded text or an invalid-UTF-8 issue) per physical line."""
    offset = 0
    for number, raw in enumerate(f, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            offset += len(codecs.BOM_UTF8)
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield (
                number,
                DataIssue(
                    number,
                    None,
                    f"invalid UTF-8 at byte offset {offset + e.start} "
                    f"(byte {e.start} of the line): {e.reason}; files must be UTF-8 encoded",
                    Code.INVALID_UTF8,
                ),
            )
        offset += len(raw)


def _read_jsonl(f: IO[bytes]) -> Iterator[Row]:
    for number, text in _lines(f):
        if isinstance(text, DataIssue):
            yield text
            continue
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:
            hint = ""
            if text.lstrip().startswith("["):
                hint = " (a JSON array is not JSON Lines: put one object on each line)"
            yield DataIssue(number, None, f"invalid JSON: {e}{hint}", Code.INVALID_JSON)
            continue
        if not isinstance(value, dict):
            yield DataIssue(
                number,
                None,
                f"each line must be a JSON object, got {type_name(value)}",
                Code.NOT_AN_OBJECT,
            )
            continue
        yield Record(number, value)


def _read_csv(f: IO[bytes]) -> Iterator[Row]:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)  # process-wide, but only ever raised

    def text_lines() -> Iterable[str]:
        for _, text in _lines(f):
            if isinstance(text, DataIssue):
                raise _Undecodable(text)
            yield text

    reader = csv.reader(text_lines())
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip() for h in header]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates or not all(names):
            yield DataIssue(
                1,
                None,
                "the header row must name each column once (duplicate or "
                f"empty names: {duplicates or ['']})",
                Code.INVALID_CSV,
            )
            return
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells:
                continue  # a blank line
            if len(cells) != len(names):
                yield DataIssue(
                    line,
                    None,
                    f"row has {len(cells)} cells, the header has {len(names)}",
                    Code.CSV_ROW_LENGTH,
                )
                continue
            yield _csv_record(line, dict(zip(names, cells, strict=True)))
    except _Undecodable as e:
        yield e.issue  # the rest of a CSV cannot be re-synchronised reliably: stop here
    except csv.Error as e:
        yield DataIssue(reader.line_num, None, f"invalid CSV: {e}", Code.INVALID_CSV)


def _csv_record(line: int, row: dict[str, str]) -> Row:
    data: dict[str, Any] = {}
    for name, cell in row.items():
        if cell == "" and name in CSV_OPTIONAL_COLUMNS:
            continue
        stripped = cell.strip()
        if name in CSV_JSON_COLUMNS or (
            name in CSV_MAYBE_JSON_COLUMNS and stripped[:1] in ("[", "{")
        ):
            try:
                data[name] = json.loads(cell)
                continue
            except (ValueError, RecursionError) as e:
                if name in CSV_JSON_COLUMNS:
                    return DataIssue(line, name, f"cell must hold JSON: {e}", Code.INVALID_JSON)
        data[name] = cell
    return Record(line, data)


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow as pa  # lazy: pyarrow is slow to import and only parquet needs it
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        number = 0
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                # Parquet columns exist in every row; a null means the field is absent.
                yield Record(number, {k: v for k, v in row.items() if v is not None})
    except (pa.ArrowException, OSError, ValueError) as e:
        yield DataIssue(0, None, f"cannot read the parquet file: {e}", Code.INVALID_PARQUET)


def type_name(value: object) -> str:
    """The JSON name of a value's type, for messages a client understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
