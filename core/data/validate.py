"""Validate a dataset file and load it as normalised examples.

One streaming pass does both: read rows, detect the file's format, convert and check each
row, then run the file-level checks (method compatibility, class count, size). The API calls
validate_dataset on upload and job creation (constant memory: nothing is kept); the worker
calls load_examples, which keeps the examples and raises DataError if anything is wrong.
"""

from __future__ import annotations

from pathlib import Path

from core.data.convert import CONVERTERS
from core.data.examples import Example, LabeledText
from core.data.formats import detect, formats_for_method, resolve_messages
from core.data.readers import container_name, read_records
from core.data.report import (
    EMPTY_CODES,
    Code,
    DataError,
    DataIssue,
    DatasetFormat,
    DatasetReport,
    IssueLog,
    Record,
    RowLog,
)

_FORMAT_KEYS_HINT = (
    "messages | prompt+completion | instruction+output | conversations | text | text+label | "
    "input+preferred_output+non_preferred_output | prompt+chosen+rejected | "
    "prompt+completions+ranking | prompt | chosen+rejected (whole conversations) | "
    "input_ids (+labels, attention_mask) | segments"
)


def validate_dataset(
    path: Path,
    filename: str,
    *,
    expected: DatasetFormat | None = None,
    method: str | None = None,
    max_errors: int = 20,
    min_examples: int = 1,
    drop_empty: bool = False,
) -> DatasetReport:
    """Check a whole file and report every problem (the first `max_errors` in full).

    `filename` is the upload's original name (it picks the container: .jsonl, .jsonl.gz, .csv,
    .parquet); `path` is where its bytes are. `expected` declares the format instead of
    detecting it; `method` rejects formats that method cannot train on and decides whether
    `{"messages"}` rows are chat (supervised) or prompts (ppo, grpo). `drop_empty` turns rows
    whose only problems are EMPTY_CODES into warnings, counted in `n_dropped`.
    """
    report, _ = _scan(
        path,
        filename,
        expected=expected,
        method=method,
        max_errors=max_errors,
        min_examples=min_examples,
        keep=False,
        drop_empty=drop_empty,
    )
    return report


def read_dataset(
    path: Path,
    filename: str,
    *,
    expected: DatasetFormat | None = None,
    method: str | None = None,
    max_errors: int = 20,
    min_examples: int = 1,
    drop_empty: bool = False,
    max_kept: int | None = None,
) -> tuple[DatasetReport, list[Example]]:
    """The report and the examples of every valid row, without raising: for callers that
    measure a partly invalid file (the dry-run report) or act on its warnings (the worker
    reports dropped rows); `ensure_valid` then decides whether training may start.
    `max_kept` keeps only the first that many examples (the report still covers them all)."""
    return _scan(
        path,
        filename,
        expected=expected,
        method=method,
        max_errors=max_errors,
        min_examples=min_examples,
        keep=True,
        drop_empty=drop_empty,
        max_kept=max_kept,
    )


def load_examples(
    path: Path,
    filename: str,
    *,
    expected: DatasetFormat | None = None,
    method: str | None = None,
    min_examples: int = 1,
    drop_empty: bool = False,
) -> tuple[DatasetFormat, list[Example]]:
    """The file's format and its examples in file order; DataError (with the full report)
    if the file has any error, so training never starts on a half-read dataset."""
    report, examples = read_dataset(
        path,
        filename,
        expected=expected,
        method=method,
        min_examples=min_examples,
        drop_empty=drop_empty,
    )
    return ensure_valid(report, expected), examples


def ensure_valid(report: DatasetReport, expected: DatasetFormat | None = None) -> DatasetFormat:
    """The file's format, or DataError if the report has any error (an empty file counts:
    its format cannot be told)."""
    fmt = report.format or expected
    if fmt is None and report.ok:
        issue = DataIssue(
            0, None, "the file is empty: cannot tell its format", str(Code.UNKNOWN_FORMAT)
        )
        report.errors.insert(0, issue)
        report.error_count += 1
    if not report.ok or fmt is None:
        raise DataError(report)
    return fmt


def _scan(
    path: Path,
    filename: str,
    *,
    expected: DatasetFormat | None,
    method: str | None,
    max_errors: int,
    min_examples: int,
    keep: bool,
    drop_empty: bool = False,
    max_kept: int | None = None,
) -> tuple[DatasetReport, list[Example]]:
    accepted = formats_for_method(method) if method is not None else None
    log = IssueLog(max(max_errors, 0))
    head: list[DataIssue] = []  # file-level issues reported before row issues
    tail: list[DataIssue] = []  # ... and after them
    file_format: DatasetFormat | None = expected
    origin = 0  # the line whose format set file_format (0: declared by `expected`)
    messages_format: DatasetFormat | None = None
    labels: set[str] = set()
    examples: list[Example] = []
    n_records = n_examples = n_dropped = 0
    shape: str | None = None

    for row in read_records(path, filename):
        if isinstance(row, DataIssue):
            if row.line == 0:
                head.append(row)
            else:
                log.error(row)
            continue
        n_records += 1
        fmt = _row_format(row, expected, method, messages_format, log)
        if fmt is None:
            continue
        if fmt in (DatasetFormat.CHAT, DatasetFormat.PROMPTS) and "messages" in row.data:
            messages_format = fmt
        if file_format is None:
            file_format, origin = fmt, row.line
        elif fmt != file_format:
            _mismatch(log, row.line, fmt, file_format, origin)
            continue
        # With drop_empty a row's issues wait in a scratch log until we know if it is only empty.
        row_log = IssueLog(max_errors=1_000).row(row.line) if drop_empty else log.row(row.line)
        out = CONVERTERS[fmt](row.data, row_log)
        if drop_empty:
            n_dropped += _settle(row_log, log)
        if row_log.failed:
            continue
        shape = shape or row_log.shape or fmt.value
        n_examples += len(out)
        if fmt == DatasetFormat.CLASSIFICATION and len(labels) < 2:
            labels.update(ex.label for ex in out if isinstance(ex, LabeledText))
        if keep and (max_kept is None or len(examples) < max_kept):
            examples.extend(out[: None if max_kept is None else max_kept - len(examples)])

    if accepted is not None and file_format is not None and file_format not in accepted:
        head.append(
            DataIssue(
                0,
                None,
                f"method {method!r} trains on {' or '.join(sorted(accepted))} data, but "
                f"this file is {file_format}",
                str(Code.FORMAT_NOT_SUPPORTED),
            )
        )
    if file_format == DatasetFormat.CLASSIFICATION and len(labels) == 1:
        tail.append(
            DataIssue(
                0,
                "label",
                f"every example has the label {labels.pop()!r}: "
                "classification needs at least 2 classes",
                str(Code.SINGLE_CLASS),
            )
        )
    if n_examples < min_examples:
        tail.append(
            DataIssue(
                0,
                None,
                f"the file has {n_examples} valid example"
                f"{'' if n_examples == 1 else 's'}; at least {min_examples} "
                "required",
                str(Code.TOO_FEW_EXAMPLES),
            )
        )

    room = max(max_errors - len(head) - len(tail), 0)
    report = DatasetReport(
        format=file_format,
        n_examples=n_examples,
        errors=head + log.errors[:room] + tail,
        error_count=log.error_count + len(head + tail),
        warnings=log.warnings,
        warning_count=log.warning_count,
        n_records=n_records,
        n_dropped=n_dropped,
        shape=shape,
        container=container_name(path, filename),
    )
    return report, examples


def _settle(row: RowLog, log: IssueLog) -> bool:
    """Move a buffered row's issues into the file's log: as warnings when every error says the
    row is empty (True: the row is dropped), else as they are."""
    scratch = row.log
    empty = row.failed and all(issue.code in EMPTY_CODES for issue in scratch.errors)
    for issue in scratch.errors:
        (log.warn if empty else log.error)(issue)
    for issue in scratch.warnings:
        log.warn(issue)
    return empty


def _row_format(
    row: Record,
    expected: DatasetFormat | None,
    method: str | None,
    messages_format: DatasetFormat | None,
    log: IssueLog,
) -> DatasetFormat | None:
    """The row's format; `{"messages"}` rows take the file's resolved chat-or-prompts."""
    fmt = detect(row.data)
    if fmt is None:
        keys = ", ".join(sorted(row.data)) or "none"
        log.row(row.line).error(
            None,
            Code.UNKNOWN_FORMAT,
            f"cannot tell the dataset format from the keys ({keys}); expected {_FORMAT_KEYS_HINT}",
        )
        return None
    if fmt == DatasetFormat.CHAT:
        return messages_format or resolve_messages(row.data, expected, method)
    return fmt


def _mismatch(
    log: IssueLog, line: int, fmt: DatasetFormat, file_format: DatasetFormat, origin: int
) -> None:
    row = log.row(line)
    if origin == 0:
        row.error(
            None,
            Code.FORMAT_MISMATCH,
            f"this row is {fmt} data, but the file was declared {file_format}",
        )
    else:
        row.error(
            None,
            Code.MIXED_FORMATS,
            f"mixed formats: this row is {fmt} data, but the "
            f"file is {file_format} (from line {origin}); use one format per file",
        )
