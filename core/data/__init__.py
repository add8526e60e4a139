"""The dataset layer: read uploaded files (JSONL, gzip, CSV, parquet), detect and validate
their format, normalise rows into the example types of core.data.examples, and clean, split
and measure them. Light to import: no torch, and pyarrow only when a parquet file is read."""

from core.data.cleaning import dedupe, near_duplicates, split_holdout
from core.data.examples import (
    Conversation,
    Example,
    LabeledText,
    Message,
    PreferencePair,
    PromptExample,
    Role,
    Segments,
    TextExample,
    TokenIds,
)
from core.data.formats import formats_for_method
from core.data.report import Code, DataError, DataIssue, DatasetFormat, DatasetReport
from core.data.stats import measure, token_stats
from core.data.validate import ensure_valid, load_examples, read_dataset, validate_dataset

__all__ = [
    "Code",
    "Conversation",
    "DataError",
    "DataIssue",
    "DatasetFormat",
    "DatasetReport",
    "Example",
    "LabeledText",
    "Message",
    "PreferencePair",
    "PromptExample",
    "Role",
    "Segments",
    "TextExample",
    "TokenIds",
    "dedupe",
    "ensure_valid",
    "formats_for_method",
    "load_examples",
    "measure",
    "near_duplicates",
    "read_dataset",
    "split_holdout",
    "token_stats",
    "validate_dataset",
]
