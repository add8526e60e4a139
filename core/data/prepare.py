"""Turn a training file's examples into what a job trains, validates and tests on: optional
exact duplicate removal, then an optional seeded test split (kept for one final evaluation,
never trained or validated on), then a seeded hold-out split when no validation file was given.

Every change to the data is returned as a note (a job event in the worker, a line in the
dry-run report): a client must never wonder why a job trained on fewer examples than it sent.
Duplicates are removed before splitting, so no example sits on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.data.cleaning import dedupe as remove_duplicates
from core.data.cleaning import split_holdout
from core.data.examples import Example
from core.data.report import EMPTY_CODES, DatasetReport
from core.errors import InvalidRequest

AUTO_FRACTION = 0.1
"""`validation_split: "auto"` holds out this fraction of the training examples ..."""
AUTO_MAX = 200
"""... at most this many (evaluation time grows with it, its precision barely does) ..."""
AUTO_MIN_EXAMPLES = 20
"""... and only from files of at least this many examples: a tiny file has none to spare."""
TEST_LINES_SHOWN = 100
"""The test split's event lists this many of its source lines (the split is seeded, so the
rest follow from the seed; a long list would bloat the event)."""


@dataclass(frozen=True)
class Note:
    level: Literal["info", "warn"]
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    train: list[Example]
    validation: list[Example]
    notes: list[Note]
    n_duplicates: int = 0
    """Exact duplicates found in the training examples (removed only with `dedupe`)."""
    n_held_out: int = 0
    test: list[Example] = field(default_factory=list)
    """Held out by `data.test_split` for the final evaluation only."""


def prepare(
    train: Sequence[Example],
    validation: Sequence[Example] | None,
    *,
    validation_split: float | Literal["auto"],
    dedupe: bool,
    seed: int,
    test_split: float = 0,
) -> Prepared:
    """The examples to train, validate and test on. `validation` is the validation file's
    examples (None: no file, so `validation_split` applies); `validation_split` is a fraction
    in [0, 1) or "auto" (AUTO_FRACTION of the examples, at most AUTO_MAX, none under
    AUTO_MIN_EXAMPLES), taken from what the test split (`test_split`, 0: none) left."""
    notes: list[Note] = []
    kept, n_dup = remove_duplicates(train)
    if dedupe:
        train = kept
        notes.append(
            Note(
                "info",
                f"Removed {n_dup} exact duplicate example{'' if n_dup == 1 else 's'} (data.dedupe)",
                {"removed": n_dup},
            )
        )
    elif n_dup:
        notes.append(
            Note(
                "warn",
                f"Found {n_dup} exact duplicate example"
                f"{'' if n_dup == 1 else 's'}, kept (set data.dedupe to remove "
                "duplicates)",
                {"duplicates": n_dup},
            )
        )
    test: list[Example] = []
    if test_split:
        train, test = _test_split(train, test_split, seed)
        notes.append(_test_note(train, test, test_split, seed))
    if validation is not None:
        return Prepared(list(train), list(validation), notes, n_dup, test=test)
    split, note = _split(train, validation_split, seed)
    train_part, held_out = split
    if note:
        notes.append(note)
    return Prepared(train_part, held_out, notes, n_dup, len(held_out), test)


def check_test_split(n: int, test_split: float) -> None:
    """Raise the 400 for a file too small to give `test_split` of it to a test set and still
    leave training data; the job's API check (on the file's example count) and the worker's
    (after cleaning) say the same thing."""
    if test_split and int(n * test_split) < 1:
        raise InvalidRequest(
            f"data.test_split={test_split} of {n} example{'' if n == 1 else 's'} leaves no "
            f"test example: use a larger fraction or file (at least {_at_least(test_split)} "
            "examples), or 0 for no test split",
            param="data.test_split",
        )


def _at_least(test_split: float) -> int:
    n = max(2, int(1 / test_split))
    return n if int(n * test_split) >= 1 else n + 1


def _test_split(
    train: Sequence[Example], test_split: float, seed: int
) -> tuple[list[Example], list[Example]]:
    check_test_split(len(train), test_split)
    part, test = split_holdout(train, fraction=test_split, max_size=len(train), seed=seed)
    if not test:  # every source line expands to more examples than the split's size
        raise InvalidRequest(
            f"data.test_split={test_split} of {len(train)} examples leaves no test example: "
            "the examples of one source line stay together and each line has more than "
            f"{int(len(train) * test_split)}; use a larger fraction",
            param="data.test_split",
        )
    return part, test


def _test_note(train: list[Example], test: list[Example], test_split: float, seed: int) -> Note:
    n = len(train) + len(test)
    lines = sorted({getattr(ex, "line", 0) for ex in test} - {0})
    return Note(
        "info",
        f"Held out {len(test)} of {n} examples as a test set for the final evaluation "
        f"(data.test_split={test_split}, seed {seed}); never trained or validated on",
        {"test": len(test), "train": len(train), "seed": seed, "lines": lines[:TEST_LINES_SHOWN]},
    )


def _split(
    train: Sequence[Example], validation_split: float | Literal["auto"], seed: int
) -> tuple[tuple[list[Example], list[Example]], Note | None]:
    n = len(train)
    if validation_split == "auto":
        if n < AUTO_MIN_EXAMPLES:
            return (list(train), []), Note(
                "info",
                f"No validation split: {n} examples are fewer than {AUTO_MIN_EXAMPLES} "
                "(data.validation_split=auto); give a validation_file to evaluate",
                {"held_out": 0},
            )
        fraction, cap = AUTO_FRACTION, AUTO_MAX
    else:
        fraction, cap = validation_split, n
    if fraction == 0:
        return (list(train), []), None  # asked for no split: nothing changes, nothing to say
    part, held = split_holdout(train, fraction=fraction, max_size=cap, seed=seed)
    setting = f"data.validation_split={validation_split}"
    if not held:
        return (part, held), Note(
            "warn", f"No validation split: {setting} of {n} examples rounds to 0", {"held_out": 0}
        )
    return (part, held), Note(
        "info",
        f"Held out {len(held)} of {n} examples for validation ({setting}, seed {seed})",
        {"held_out": len(held), "train": len(part), "seed": seed},
    )


def dropped_note(report: DatasetReport, name: str) -> Note | None:
    """The note for rows a `drop_empty` read dropped from file `name`, naming their lines."""
    if not report.n_dropped:
        return None
    lines = sorted({w.line for w in report.warnings if w.code in EMPTY_CODES})
    shown = ", ".join(map(str, lines[:10])) + (", ..." if report.n_dropped > 10 else "")
    s = "" if report.n_dropped == 1 else "s"
    return Note(
        "info",
        f"Dropped {report.n_dropped} empty row{s} from the {name} "
        f"(data.drop_empty): line{s} {shown}",
        {"dropped": report.n_dropped, "lines": lines[:10]},
    )
