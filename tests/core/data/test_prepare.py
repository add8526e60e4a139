"""Cleaning and the hold-out split a job applies before training: each step leaves a note."""

from __future__ import annotations

import pytest

from core.data import TextExample, read_dataset
from core.data.examples import PreferencePair
from core.data.prepare import AUTO_MAX, dropped_note, prepare
from core.errors import InvalidRequest


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


def test_test_split_is_seeded_disjoint_and_taken_before_validation():
    data = texts(50)
    a = prepare(data, None, validation_split="auto", dedupe=False, seed=3, test_split=0.2)
    # 10 of 50 to the test set first; auto validation then takes int(40 * 0.1) = 4 of the rest
    assert (len(a.train), len(a.validation), len(a.test)) == (36, 4, 10)
    lines = [{ex.line for ex in part} for part in (a.train, a.validation, a.test)]
    assert not (lines[0] & lines[1] or lines[0] & lines[2] or lines[1] & lines[2])
    assert sorted(a.train + a.validation + a.test, key=lambda e: e.line) == data
    assert [ex.line for ex in a.test] == sorted(lines[2])  # file order
    assert messages(a) == [
        (
            "info",
            "Held out 10 of 50 examples as a test set for the final evaluation "
            "(data.test_split=0.2, seed 3); never trained or validated on",
        ),
        ("info", "Held out 4 of 40 examples for validation (data.validation_split=auto, seed 3)"),
    ]
    assert a.notes[0].data == {"test": 10, "train": 40, "seed": 3, "lines": sorted(lines[2])}
    again = prepare(data, None, validation_split="auto", dedupe=False, seed=3, test_split=0.2)
    other = prepare(data, None, validation_split="auto", dedupe=False, seed=4, test_split=0.2)
    assert (again.test, again.validation, again.train) == (a.test, a.validation, a.train)
    assert other.test != a.test


def test_test_split_applies_with_a_validation_file_and_after_dedupe():
    data = texts(20) + [TextExample("example 0", line=21)]
    prepared = prepare(data, texts(3, 100), validation_split=0, dedupe=True, seed=0, test_split=0.5)
    assert (len(prepared.train), len(prepared.test), prepared.validation) == (10, 10, texts(3, 100))
    # the duplicate was removed first, so it cannot sit on both sides of the split
    keys = [ex.text for ex in prepared.train + prepared.test]
    assert len(keys) == len(set(keys)) == 20
    assert [n.message.split(" (")[0] for n in prepared.notes] == [
        "Removed 1 exact duplicate example",
        "Held out 10 of 20 examples as a test set for the final evaluation",
    ]
    no_split = prepare(texts(20), None, validation_split=0, dedupe=False, seed=0)
    assert (no_split.test, no_split.notes) == ([], [])


def test_test_split_keeps_a_source_lines_pairs_together_and_fails_when_too_small():
    pairs = [
        PreferencePair(prompt=(), chosen=(), rejected=(), line=1 + i // 2) for i in range(8)
    ]  # 4 ranked rows, each expanded to 2 pairs
    prepared = prepare(pairs, None, validation_split=0, dedupe=False, seed=1, test_split=0.5)
    assert len(prepared.test) == 4
    assert not {p.line for p in prepared.test} & {p.line for p in prepared.train}
    with pytest.raises(InvalidRequest) as exc:  # 0.1 of 8 rounds to 0
        prepare(pairs, None, validation_split=0, dedupe=False, seed=1, test_split=0.1)
    assert exc.value.param == "data.test_split"
    assert exc.value.message.startswith("data.test_split=0.1 of 8 examples leaves no test example")
    assert "at least 10 examples" in exc.value.message
    with pytest.raises(InvalidRequest) as exc:  # 1 pair wanted, but each row has 2
        prepare(pairs, None, validation_split=0, dedupe=False, seed=1, test_split=0.2)
    assert exc.value.param == "data.test_split" and "stay together" in exc.value.message
    with pytest.raises(InvalidRequest):
        prepare(texts(1), None, validation_split=0, dedupe=False, seed=0, test_split=0.5)


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
