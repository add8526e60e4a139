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
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from core.data.json_array import read_json_array, starts_array
from core.data.limits import ReadLimits
from core.data.lines import InflateLimit, bounded_lines, open_binary
from core.data.parquet import read_parquet
from core.data.report import Code, DataIssue, Record, Row

# CSV cells are strings; these columns hold JSON (a list or object) and are decoded.
CSV_JSON_COLUMNS = frozenset(
    {
        "messages",
        "conversations",
        "tools",
        "functions",
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
CSV_OPTIONAL_COLUMNS = frozenset(
    {"input", "text_pair", "reference", "reference_answer", "tools", "functions"}
)


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


def read_records(path: Path, filename: str, limits: ReadLimits | None = None) -> Iterator[Row]:
    """Every row of the file, in order. Fatal problems (bad gzip, bad parquet, an exceeded
    read limit) end the stream with one issue; per-row problems yield an issue and reading
    goes on. `limits` default to the settings' (core.data.limits)."""
    limits = limits or ReadLimits.from_settings()
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
        yield from read_parquet(path, limits)
        return
    with open_binary(path, limits) as f:
        try:
            if container == "jsonl" and starts_array(f):
                yield from _read_array(f, limits)
            elif container == "jsonl":
                yield from _read_jsonl(f, limits)
            else:
                yield from _read_csv(f, limits)
        except (OSError, EOFError) as e:  # truncated or corrupt gzip stream
            yield DataIssue(0, None, f"cannot read the file: {e}", Code.READ_ERROR)


def container_name(path: Path, filename: str, limits: ReadLimits | None = None) -> str | None:
    """How the file holds its rows: 'jsonl', 'json_array', 'csv' or 'parquet' (None if the
    name is unsupported), for the validation report."""
    kind = container_of(filename)
    if kind is None or kind[0] != "jsonl":
        return kind[0] if kind else None
    try:
        with open_binary(path, limits or ReadLimits.from_settings()) as f:
            return "json_array" if starts_array(f) else "jsonl"
    except (OSError, EOFError):
        return "jsonl"


def _read_array(f: IO[bytes], limits: ReadLimits) -> Iterator[Row]:
    """A JSON array file (Alpaca / LLaMA-Factory style), streamed element by element."""
    try:
        for item in read_json_array(f, limits):
            if isinstance(item, DataIssue):
                yield item
                return
            line, value = item
            if isinstance(value, dict):
                yield Record(line, value)
            else:
                yield DataIssue(
                    line,
                    None,
                    f"each array element must be a JSON object, got {type_name(value)}",
                    Code.NOT_AN_OBJECT,
                )
    except InflateLimit as e:
        yield DataIssue(
            0,
            None,
            f"the gzip stream inflates to more than {e.cap} bytes "
            "(LATHE_MAX_DECOMPRESSED_BYTES / LATHE_MAX_GZIP_RATIO)",
            Code.DECOMPRESSED_TOO_LARGE,
        )


class _Undecodable(Exception):
    def __init__(self, issue: DataIssue) -> None:
        self.issue = issue


def _lines(f: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, str | DataIssue]]:
    """(1-based line number, decoded text or the line's issue) per physical line."""
    offset: int | None = 0  # None once a skipped line makes file offsets unknown
    for number, raw in bounded_lines(f, limits):
        if isinstance(raw, DataIssue):
            offset = None
            yield number, raw
            continue
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            offset = len(codecs.BOM_UTF8)
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield (
                number,
                DataIssue(
                    number,
                    None,
                    f"invalid UTF-8 at {_where(offset, e.start)}: {e.reason}; "
                    "files must be UTF-8 encoded",
                    Code.INVALID_UTF8,
                ),
            )
        if offset is not None:
            offset += len(raw)


def _where(offset: int | None, start: int) -> str:
    if offset is None:
        return f"byte {start} of the line"
    return f"byte offset {offset + start} (byte {start} of the line)"


def _json_error(exc: BaseException) -> str:
    """The parser's complaint and where in the line, without its own "line N column M": the
    issue already names the file's line, and a second line number (1, or 2 after a stray
    carriage return) read as a contradiction."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos + 1} of the line"
    return str(exc)


def _read_jsonl(f: IO[bytes], limits: ReadLimits) -> Iterator[Row]:
    for number, text in _lines(f, limits):
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
            yield DataIssue(
                number, None, f"invalid JSON: {_json_error(e)}{hint}", Code.INVALID_JSON
            )
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


def _read_csv(f: IO[bytes], limits: ReadLimits) -> Iterator[Row]:
    # Process-wide, but every CSV read sets it from its own limits; a record may span lines,
    # so its bytes are also counted across them (`pending`).
    csv.field_size_limit(limits.max_line_bytes)
    pending = [0]

    def text_lines() -> Iterable[str]:
        for number, text in _lines(f, limits):
            if isinstance(text, DataIssue):
                raise _Undecodable(text)
            pending[0] += len(text)
            if pending[0] > limits.max_line_bytes:
                raise _Undecodable(_record_too_long(number, limits))
            yield text

    reader = csv.reader(text_lines())
    try:
        header = next(reader, None)
        if header is None:
            return
        if issue := _header_issue(header, limits):
            yield issue
            return
        names = [h.strip() for h in header]
        start = reader.line_num + 1
        pending[0] = 0
        for cells in reader:
            line, start, pending[0] = start, reader.line_num + 1, 0
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


def _header_issue(header: list[str], limits: ReadLimits) -> DataIssue | None:
    """Too many columns, or a duplicate or empty name (counted in one pass: linear time)."""
    if len(header) > limits.max_columns:
        return DataIssue(
            1,
            None,
            f"the header has {len(header)} columns, more than {limits.max_columns} "
            "(LATHE_MAX_DATASET_COLUMNS)",
            Code.TOO_MANY_COLUMNS,
        )
    counts = Counter(h.strip() for h in header)
    duplicates = sorted(n for n, c in counts.items() if c > 1)
    if duplicates or "" in counts:
        return DataIssue(
            1,
            None,
            "the header row must name each column once (duplicate or "
            f"empty names: {duplicates or ['']})",
            Code.INVALID_CSV,
        )
    return None


def _record_too_long(number: int, limits: ReadLimits) -> DataIssue:
    return DataIssue(
        number,
        None,
        f"CSV record is longer than {limits.max_line_bytes} bytes (LATHE_MAX_LINE_BYTES) "
        "by this line",
        Code.LINE_TOO_LONG,
    )


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
