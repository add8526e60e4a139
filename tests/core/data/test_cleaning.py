"""Dedupe, near-duplicates and the hold-out split: exact results, deterministic."""

from __future__ import annotations

import random

import pytest

from core.data import (
    Conversation,
    LabeledText,
    Message,
    PreferencePair,
    PromptExample,
    TextExample,
    dedupe,
    near_duplicates,
    split_holdout,
)


def conv(q: str, a: str, line: int = 0) -> Conversation:
    return Conversation((Message("user", q), Message("assistant", a)), line=line)


def test_dedupe_keeps_first_and_ignores_line():
    items = [
        conv("q1", "a1", 1),
        conv("q2", "a2", 2),
        conv("q1", "a1", 3),
        conv("q1", "a1 ", 4),
        TextExample("q1\na1", line=5),
        conv("q2", "a2", 6),
    ]
    kept, removed = dedupe(items)
    assert removed == 2
    assert [ex.line for ex in kept] == [1, 2, 4, 5]


def test_dedupe_handles_unhashable_fields():
    a = PromptExample((Message("user", "p"),), extra={"tags": ["x"]}, line=1)
    b = PromptExample((Message("user", "p"),), extra={"tags": ["x"]}, line=2)
    c = PromptExample((Message("user", "p"),), extra={"tags": ["y"]}, line=3)
    kept, removed = dedupe([a, b, c])
    assert (kept, removed) == ([a, c], 1)


def test_near_duplicates_pairs():
    base = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat."
    items = [
        TextExample(base),
        TextExample("An entirely different sentence about databases and indexes."),
        TextExample(base.upper().replace(",", "")),  # formatting only: same
        TextExample(base.replace("warm", "cold")),  # one word: 0.81 similar
        LabeledText(base, label="a"),  # same text, other label
    ]
    assert near_duplicates(items, threshold=0.9) == [(0, 2), (0, 4), (2, 4)]
    assert near_duplicates(items, threshold=0.8) == [(0, 2), (0, 3), (0, 4), (2, 3), (2, 4), (3, 4)]


def test_near_duplicates_matches_brute_force():
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    texts = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60)]
    texts += [t.replace("alpha", "omega", 1) for t in texts[:30]]
    items = [TextExample(t) for t in texts]
    from core.data.cleaning import _shingles

    sets = [_shingles(t) for t in texts]
    brute = [
        (i, j)
        for i in range(len(sets))
        for j in range(i + 1, len(sets))
        if len(sets[i] & sets[j]) >= 0.7 * len(sets[i] | sets[j])
    ]
    assert brute  # the corpus does have near duplicates
    assert near_duplicates(items, threshold=0.7) == brute


def test_near_duplicates_on_thousands_of_templated_examples():
    # Shared boilerplate makes most shingles common: candidates must still come from the
    # rare ones (an all-pairs loop here would take minutes, not a fraction of a second).
    rng = random.Random(0)
    system = Message("system", "You are a helpful assistant. Answer concisely and politely.")
    items = [
        PreferencePair(
            (system, Message("user", f"question {i} {rng.random()}")),
            (Message("assistant", f"answer {rng.random()}"),),
            (Message("assistant", f"wrong {rng.random()}"),),
        )
        for i in range(3000)
    ]
    items.append(items[1234])
    assert near_duplicates(items) == [(1234, 3000)]


def test_near_duplicates_rejects_bad_threshold():
    with pytest.raises(ValueError):
        near_duplicates([], threshold=0)


def test_split_holdout_is_seeded_and_ordered():
    items = [TextExample(str(i), line=i + 1) for i in range(100)]
    train, hold = split_holdout(items, fraction=0.1, max_size=50, seed=3)
    assert len(hold) == 10 and len(train) == 90
    assert sorted(train + hold, key=lambda e: e.line) == items
    assert hold == sorted(hold, key=lambda e: e.line) and train == sorted(
        train, key=lambda e: e.line
    )
    assert split_holdout(items, fraction=0.1, max_size=50, seed=3) == (train, hold)
    assert split_holdout(items, fraction=0.1, max_size=50, seed=4)[1] != hold
    # the exact choice is pinned so a change of algorithm (and so of every job's split) shows
    assert [e.line for e in hold] == [1, 5, 12, 13, 36, 42, 43, 46, 65, 77]


def test_split_holdout_limits():
    items = [TextExample(str(i), line=i + 1) for i in range(10)]
    assert len(split_holdout(items, fraction=0.5, max_size=2, seed=0)[1]) == 2
    assert split_holdout(items, fraction=0.0, max_size=5, seed=0) == (items, [])
    assert split_holdout(items[:1], fraction=0.9, max_size=5, seed=0) == (items[:1], [])
    with pytest.raises(ValueError):
        split_holdout(items, fraction=1.0, max_size=5, seed=0)


def test_split_holdout_keeps_ranked_groups_together():
    pairs = [
        PreferencePair(
            (Message("user", f"q{line}"),),
            (Message("assistant", "a"),),
            (Message("assistant", "b"),),
            line=line,
        )
        for line in range(1, 21)
        for _ in range(3)
    ]
    train, hold = split_holdout(pairs, fraction=0.25, max_size=100, seed=1)
    assert len(hold) == 15
    assert not {p.line for p in train} & {p.line for p in hold}
