"""Token statistics for the validation report and for "auto" hyperparameters.

Pure arithmetic over per-example token counts: the tokenizer belongs to the caller (passed in
as a callable to `measure`), so this module never imports torch or transformers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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


def _percentile(ordered: Sequence[int], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted data; rounded
    to 6 places so hand-checkable numbers (88.0, not 87.99999999999999) come out."""
    scaled = p * (len(ordered) - 1)  # position * 100, exact for integer p
    lo = math.floor(scaled / 100)
    hi = min(lo + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (scaled - lo * 100) / 100, 6)


def _histogram(values: Sequence[int], bins: int) -> dict[str, list]:
    """Equal-width bins from min to max, the last bin closed (as numpy.histogram); a single
    distinct value gets the range value ± 0.5, also as numpy does."""
    lo, hi = float(min(values)), float(max(values))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    edges = [lo + span * i / bins for i in range(bins)] + [hi]
    counts = [0] * bins
    for v in values:  # multiply before dividing: exact for integer counts on an edge
        counts[min(int((v - lo) * bins / span), bins - 1)] += 1
    return {"edges": edges, "counts": counts}


def token_stats(
    lengths: list[int], trained: list[int], max_seq_length: int | None, bins: int = 10
) -> dict:
    """Summary of per-example token counts. `lengths[i]` is example i's total tokens and
    `trained[i]` how many of them carry loss; prompt tokens are the difference. Totals are
    before truncation; `n_truncated` counts examples longer than max_seq_length and
    `truncated_tokens` the tokens they lose."""
    if len(lengths) != len(trained):
        raise ValueError(f"lengths and trained differ in size: {len(lengths)} != {len(trained)}")
    if any(t < 0 or t > n for t, n in zip(trained, lengths, strict=True)):
        raise ValueError("each trained count must be between 0 and the example's length")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    total, trained_total = sum(lengths), sum(trained)
    limit = max_seq_length
    over = [n - limit for n in lengths if limit is not None and n > limit]
    stats: dict = {
        "n_examples": len(lengths),
        "total_tokens": total,
        "trained_tokens": trained_total,
        "prompt_tokens": total - trained_total,
        "max_seq_length": limit,
        "n_truncated": len(over),
        "truncated_tokens": sum(over),
    }
    if not lengths:
        return stats | {
            "min": 0,
            "mean": 0.0,
            "p50": 0.0,
            "p95": 0.0,
            "max": 0,
            "histogram": {"edges": [], "counts": []},
        }
    ordered = sorted(lengths)
    return stats | {
        "min": ordered[0],
        "mean": total / len(lengths),
        "p50": _percentile(ordered, 50),
        "p95": _percentile(ordered, 95),
        "max": ordered[-1],
        "histogram": _histogram(lengths, bins),
    }


def measure(
    examples: Sequence[Example], count_tokens: Callable[[str], int]
) -> tuple[list[int], list[int]]:
    """(lengths, trained) per example for token_stats, counting message contents only (no chat
    template), which is what a validation report can afford before a model is chosen.
    Trained tokens: assistant turns not weighted 0 (chat), chosen + rejected (preference),
    everything (text, classification), nothing (RL prompts, answered online)."""
    lengths: list[int] = []
    trained: list[int] = []

    def count(messages: Sequence[Message]) -> int:
        return sum(count_tokens(m.content) for m in messages)

    for ex in examples:
        if isinstance(ex, Conversation):
            n = count(ex.messages)
            t = count([m for m in ex.messages if m.role == Role.ASSISTANT and m.weight != 0])
        elif isinstance(ex, PreferencePair):
            t = count(ex.chosen) + count(ex.rejected)
            n = count(ex.prompt) + t
        elif isinstance(ex, TextExample):
            n = t = count_tokens(ex.text)
        elif isinstance(ex, LabeledText):
            n = t = count_tokens(ex.text) + (count_tokens(ex.text_pair) if ex.text_pair else 0)
        elif isinstance(ex, PromptExample):
            n, t = count(ex.prompt), 0
        elif isinstance(ex, TokenIds):
            n, t = len(ex.input_ids), sum(label != -100 for label in ex.labels)
        elif isinstance(ex, Segments):
            n = count_tokens(ex.text)
            t = sum(count_tokens(text) for text, trained in ex.segments if trained)
        else:
            raise TypeError(f"not an example: {type(ex).__name__}")
        lengths.append(n)
        trained.append(t)
    return lengths, trained
