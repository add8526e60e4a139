"""What validation says about a file: issues with a line, a field path and a stable code.

Clients fix their data from these messages, so every issue names where it is (1-based line,
0 for the file as a whole) and what is wrong; `code` is stable so the API and tests can match
on it without parsing prose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class DatasetFormat(StrEnum):
    CHAT = "chat"
    PROMPT_COMPLETION = "prompt_completion"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"
    TEXT = "text"
    PREFERENCE = "preference"
    RANKED = "ranked"
    CLASSIFICATION = "classification"
    PROMPTS = "prompts"
    TOKENIZED = "tokenized"
    INPUT_OUTPUT = "input_output"


class Code(StrEnum):
    """Stable issue codes. Being a StrEnum, each compares equal to its plain string."""

    # container / reading
    UNSUPPORTED_FILE_TYPE = "unsupported_file_type"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_CSV = "invalid_csv"
    CSV_ROW_LENGTH = "csv_row_length"
    INVALID_PARQUET = "invalid_parquet"
    READ_ERROR = "read_error"
    # bounds (core.data.limits): the file is too large to read safely
    LINE_TOO_LONG = "line_too_long"
    TOO_MANY_LINES = "too_many_lines"
    DECOMPRESSED_TOO_LARGE = "decompressed_too_large"
    TOO_MANY_COLUMNS = "too_many_columns"
    ROW_GROUP_TOO_LARGE = "row_group_too_large"
    # format detection
    UNKNOWN_FORMAT = "unknown_format"
    MIXED_FORMATS = "mixed_formats"
    FORMAT_MISMATCH = "format_mismatch"
    FORMAT_NOT_SUPPORTED = "format_not_supported_by_method"
    # fields
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY_CONTENT = "empty_content"
    EMPTY_MESSAGES = "empty_messages"
    UNSUPPORTED_CONTENT = "unsupported_content"
    UNKNOWN_ROLE = "unknown_role"
    WRONG_ROLE = "wrong_role"
    INVALID_WEIGHT = "invalid_weight"
    WEIGHT_NOT_ALLOWED = "weight_not_allowed"
    # tool calling (core.data.tools)
    UNKNOWN_TOOL = "unknown_tool"
    UNKNOWN_TOOL_CALL = "unknown_tool_call"
    PARALLEL_TOOL_CALLS = "parallel_tool_calls"
    UNFAITHFUL_RENDER = "unfaithful_render"
    # pre-tokenized rows
    TOKEN_OUT_OF_VOCAB = "token_out_of_vocab"
    LENGTH_MISMATCH = "length_mismatch"
    # conversation shape
    LAST_TURN_NOT_ASSISTANT = "last_turn_not_assistant"
    LAST_TURN_NOT_USER = "last_turn_not_user"
    NO_TRAINABLE_TURN = "no_trainable_turn"
    PROMPT_ENDS_WITH_ASSISTANT = "prompt_ends_with_assistant"
    PROMPT_MISMATCH = "prompt_mismatch"
    # preference / ranked / classification
    EMPTY_CHOSEN = "empty_chosen"
    EMPTY_REJECTED = "empty_rejected"
    IDENTICAL_PAIR = "identical_pair"  # a warning
    TOO_FEW_COMPLETIONS = "too_few_completions"
    TOO_MANY_COMPLETIONS = "too_many_completions"
    INVALID_RANKING = "invalid_ranking"
    EMPTY_LABEL = "empty_label"
    SINGLE_CLASS = "single_class"
    # file level
    TOO_FEW_EXAMPLES = "too_few_examples"


EMPTY_CODES = frozenset(
    {
        Code.EMPTY_CONTENT,
        Code.EMPTY_MESSAGES,
        Code.EMPTY_CHOSEN,
        Code.EMPTY_REJECTED,
        Code.NO_TRAINABLE_TURN,
    }
)
"""Issues that mean "this row has nothing to train on" rather than "this row is malformed":
with `drop_empty` a row whose every issue is one of these is dropped instead of failing."""


@dataclass(frozen=True)
class DataIssue:
    """One problem. `line` is 1-based: the JSONL line, the CSV physical line where the row
    starts (header is line 1), or the parquet row index + 1; 0 means the whole file."""

    line: int
    field: str | None
    message: str
    code: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", str(self.code))  # a Code member -> its plain string

    def __str__(self) -> str:
        where = "file" if self.line == 0 else f"line {self.line}"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.message} ({self.code})"


@dataclass
class DatasetReport:
    """The outcome of reading a file. `errors` holds at most `max_errors` issues (file-level
    first); `error_count` counts all of them, so a client sees the scale of the problem."""

    format: DatasetFormat | None
    n_examples: int
    errors: list[DataIssue]
    error_count: int
    warnings: list[DataIssue]
    warning_count: int = 0
    n_records: int = 0
    """Rows read; differs from n_examples for ranked files (one row gives several pairs)."""
    n_dropped: int = 0
    """Rows dropped as empty (`drop_empty`); their issues are among the warnings."""
    shape: str | None = None
    """The ecosystem shape the rows were detected as (e.g. `hh_rlhf`, `ultrafeedback`,
    `llamafactory_sharegpt`, `pretokenized`, `axolotl_input_output`; else the format's name),
    from the first valid row: what the file was converted from."""
    container: str | None = None
    """How the file holds its rows: jsonl, json_array, csv or parquet."""

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def as_dict(self) -> dict:
        """JSON-ready form for the API's validation endpoint."""
        out = asdict(self)
        out["ok"] = self.ok
        return out


class DataError(Exception):
    """Raised by load_examples for an invalid file; `.report` holds every issue found."""

    def __init__(self, report: DatasetReport) -> None:
        self.report = report
        if report.errors:
            message = str(report.errors[0])
            more = report.error_count - 1
            if more > 0:
                message += f" (and {more} more error{'s' if more > 1 else ''})"
        else:
            message = "invalid dataset"
        super().__init__(message)


@dataclass
class IssueLog:
    """Collects issues for one file, keeping the first `max_errors` of each kind but counting
    all, so a million-line broken file costs constant memory."""

    max_errors: int = 20
    errors: list[DataIssue] = field(default_factory=list)
    warnings: list[DataIssue] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0

    def error(self, issue: DataIssue) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(issue)

    def warn(self, issue: DataIssue) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.max_errors:
            self.warnings.append(issue)

    def row(self, line: int) -> RowLog:
        return RowLog(self, line)


class RowLog:
    """The issue log bound to one row, so converters pass only a field path; `failed` tells
    the caller to drop the row's examples."""

    def __init__(self, log: IssueLog, line: int) -> None:
        self.log = log
        self.line = line
        self.failed = False
        self.shape: str | None = None  # set by a converter that recognised an ecosystem shape

    def error(self, field_path: str | None, code: Code, message: str) -> None:
        self.failed = True
        self.log.error(DataIssue(self.line, field_path, message, str(code)))

    def warn(self, field_path: str | None, code: Code, message: str) -> None:
        self.log.warn(DataIssue(self.line, field_path, message, str(code)))


@dataclass(frozen=True)
class Record:
    """One readable row of a dataset file: its 1-based line (or row) number and its value."""

    line: int
    data: dict[str, Any]


Row = Record | DataIssue
"""What a reader yields for each row: the row, or why it cannot be read."""
