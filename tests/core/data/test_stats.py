"""token_stats and measure against numbers worked out by hand."""

from __future__ import annotations

import pytest

from core.data import (
    Conversation,
    LabeledText,
    Message,
    PreferencePair,
    PromptExample,
    TextExample,
    measure,
    token_stats,
)


def test_token_stats_by_hand():
    stats = token_stats([10, 20, 30, 40, 100], [5, 5, 10, 0, 50], max_seq_length=35, bins=3)
    assert stats == {
        "n_examples": 5,
        "total_tokens": 200,
        "trained_tokens": 70,
        "prompt_tokens": 130,
        "max_seq_length": 35,
        "n_truncated": 2,  # 40 and 100
        "truncated_tokens": 70,  # 5 + 65
        "min": 10,
        "mean": 40.0,
        "p50": 30.0,
        "p95": 88.0,  # position 0.95 * 4 = 3.8: 40 + 0.8 * (100 - 40)
        "max": 100,
        "histogram": {"edges": [10.0, 40.0, 70.0, 100.0], "counts": [3, 1, 1]},
    }


def test_token_stats_single_value_and_no_limit():
    stats = token_stats([7, 7], [7, 0], max_seq_length=None, bins=2)
    assert stats["histogram"] == {"edges": [6.5, 7.0, 7.5], "counts": [0, 2]}
    assert (stats["p50"], stats["p95"], stats["n_truncated"]) == (7.0, 7.0, 0)
    assert stats["prompt_tokens"] == 7


def test_token_stats_interpolates_p50_on_even_counts():
    assert token_stats([1, 2, 3, 10], [0, 0, 0, 0], None)["p50"] == 2.5


def test_token_stats_empty():
    stats = token_stats([], [], 128)
    assert stats["total_tokens"] == 0 and stats["histogram"] == {"edges": [], "counts": []}


def test_token_stats_rejects_inconsistent_input():
    with pytest.raises(ValueError):
        token_stats([1, 2], [1], None)
    with pytest.raises(ValueError):
        token_stats([3], [4], None)


def test_measure_counts_trained_tokens_per_type():
    words = lambda text: len(text.split())  # noqa: E731
    examples = [
        Conversation(
            (
                Message("system", "be kind"),
                Message("user", "hi there you"),
                Message("assistant", "no", weight=0),
                Message("user", "again"),
                Message("assistant", "yes sure"),
            )
        ),
        TextExample("one two three"),
        PreferencePair(
            (Message("user", "q q"),),
            (Message("assistant", "good one"),),
            (Message("assistant", "bad"),),
        ),
        LabeledText("a b", "x", text_pair="c"),
        PromptExample((Message("user", "solve this"),)),
    ]
    assert measure(examples, words) == ([9, 3, 5, 3, 2], [2, 3, 3, 3, 0])
