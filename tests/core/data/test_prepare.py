"""Cleaning and the hold-out split a job applies before training: each step leaves a note."""

from __future__ import annotations

import pytest

from core.data import TextExample, read_dataset
from core.data.prepare import AUTO_MAX, dropped_note, prepare


def texts(n: int, start: int = 0) -> list[TextExample]:
    return [TextExample(f"example {i}", line=i + 1) for i in range(start, start + n)]


def messages(prepared) -> list[tuple[str, str]]:
    return [(n.level, n.message) for n in prepared.notes]


def test_auto_holds_out_ten_percent_seeded():
    data = texts(50)
    a = prepare(data, None, validation_split="auto", dedupe=False, seed=3)
    assert (len(a.train), len(a.validation), a.n_held_out) == (45, 5, 5)
    assert messages(a) == [
        ("info", "Held out 5 of 50 examples for validation (data.validation_split=auto, seed 3)")
    ]
    assert sorted(a.train + a.validation, key=lambda e: e.line) == data
    again = prepare(data, None, validation_split="auto", dedupe=False, seed=3)
    other = prepare(data, None, validation_split="auto", dedupe=False, seed=4)
    assert again.validation == a.validation and other.validation != a.validation


def test_auto_caps_the_split_and_skips_small_files():
    big = prepare(texts(3000), None, validation_split="auto", dedupe=False, seed=0)
    assert len(big.validation) == AUTO_MAX == 200
    small = prepare(texts(19), None, validation_split="auto", dedupe=False, seed=0)
    assert (len(small.train), small.validation) == (19, [])
    assert messages(small) == [
        (
            "info",
            "No validation split: 19 examples are fewer than 20 "
            "(data.validation_split=auto); give a validation_file "
            "to evaluate",
        )
    ]


def test_explicit_fraction_zero_and_rounding():
    assert len(prepare(texts(10), None, validation_split=0.3, dedupe=False, seed=0).validation) == 3
    none = prepare(texts(10), None, validation_split=0, dedupe=False, seed=0)
    assert (len(none.train), none.notes) == (10, [])
    tiny = prepare(texts(5), None, validation_split=0.1, dedupe=False, seed=0)
    assert messages(tiny) == [
        ("warn", "No validation split: data.validation_split=0.1 of 5 examples rounds to 0")
    ]


def test_a_validation_file_means_no_split():
    prepared = prepare(texts(50), texts(4, 100), validation_split="auto", dedupe=False, seed=0)
    assert (len(prepared.train), prepared.validation, prepared.notes) == (50, texts(4, 100), [])


def test_duplicates_are_removed_before_the_split_or_reported():
    data = texts(30) + [TextExample("example 0", line=31), TextExample("example 1", line=32)]
    kept = prepare(data, None, validation_split=0, dedupe=False, seed=0)
    assert len(kept.train) == 32 and kept.n_duplicates == 2
    assert messages(kept) == [
        ("warn", "Found 2 exact duplicate examples, kept (set data.dedupe to remove duplicates)")
    ]
    removed = prepare(data, None, validation_split="auto", dedupe=True, seed=0)
    assert len(removed.train) + len(removed.validation) == 30
    assert messages(removed) == [
        ("info", "Removed 2 exact duplicate examples (data.dedupe)"),
        ("info", "Held out 3 of 30 examples for validation (data.validation_split=auto, seed 0)"),
    ]


@pytest.mark.parametrize("drop_empty", [False, True])
def test_drop_empty_drops_only_rows_that_are_just_empty(jsonl, drop_empty):
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    blank = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}
    unweighted = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo", "weight": 0},
        ]
    }
    both = {"messages": [{"role": "user", "content": ""}, {"role": "wizard", "content": "yo"}]}
    path = jsonl([chat, blank, chat, unweighted, {"text": "   "}, both])
    report, examples = read_dataset(path, path.name, drop_empty=drop_empty)
    codes = [(i.line, i.code) for i in report.errors]
    if not drop_empty:
        assert report.n_dropped == 0 and len(examples) == 2
        assert codes == [
            (2, "empty_content"),
            (4, "no_trainable_turn"),
            (5, "mixed_formats"),
            (6, "empty_content"),
            (6, "unknown_role"),
        ]
        return
    # line 5 is another format (an error either way); line 6 is empty AND malformed: an error
    assert report.n_dropped == 2 and [e.line for e in examples] == [1, 3]
    assert codes == [(5, "mixed_formats"), (6, "empty_content"), (6, "unknown_role")]
    assert [(w.line, w.code) for w in report.warnings] == [
        (2, "empty_content"),
        (4, "no_trainable_turn"),
    ]
    note = dropped_note(report, "training file")
    assert note is not None and note.message == (
        "Dropped 2 empty rows from the training file (data.drop_empty): lines 2, 4"
    )
    assert note.data == {"dropped": 2, "lines": [2, 4]}
