"""Dataset hygiene: exact and near-duplicate detection, and a seeded hold-out split.

Duplicates overweight some examples and, when they straddle the train/validation split, make
validation loss lie; so they are found before splitting. Everything here is deterministic: the
same input and seed give the same output on every machine, so a job can be re-run exactly.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, fields, is_dataclass
from typing import TypeVar

from core.data.examples import (
    Conversation,
    LabeledText,
    PreferencePair,
    PromptExample,
    Segments,
    TokenIds,
)

T = TypeVar("T")
SHINGLE = 5  # characters per shingle for near-duplicate detection
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def example_key(example: object) -> str:
    """A canonical string for exact-duplicate checks: every field except `line` (where it
    came from is not what it says). JSON with sorted keys, so dict fields compare by value."""
    if is_dataclass(example) and not isinstance(example, type):
        data = asdict(example)
        data.pop("line", None)
        return type(example).__name__ + json.dumps(data, sort_keys=True, default=str)
    return repr(example)


def dedupe(examples: Sequence[T]) -> tuple[list[T], int]:
    """Examples with exact duplicates removed (the first occurrence kept, order preserved),
    and how many were removed."""
    seen: set[str] = set()
    kept: list[T] = []
    for ex in examples:
        key = example_key(ex)
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept, len(examples) - len(kept)


def example_text(example: object) -> str:
    """The text a near-duplicate check compares: everything a model would read. Labels are
    left out, so the same text under two labels (a labelling conflict) is found too."""
    if isinstance(example, Conversation):
        return "\n".join(m.content for m in example.messages)
    if isinstance(example, PreferencePair):
        parts = example.prompt + example.chosen + example.rejected
        return "\n".join(m.content for m in parts)
    if isinstance(example, LabeledText):
        return example.text + ("\n" + example.text_pair if example.text_pair else "")
    if isinstance(example, PromptExample):
        return "\n".join(m.content for m in example.prompt)
    if isinstance(example, Segments):
        return example.text
    if isinstance(example, TokenIds):
        return " ".join(map(str, example.input_ids))
    if is_dataclass(example) and any(f.name == "text" for f in fields(example)):
        return str(example.text)  # type: ignore[attr-defined]
    return str(example)


def _shingles(text: str) -> frozenset[str]:
    """Character 5-grams of the text lower-cased with punctuation and whitespace runs
    collapsed, so formatting-only differences do not count."""
    norm = _NON_WORD.sub(" ", text.lower()).strip()
    if len(norm) <= SHINGLE:
        return frozenset({norm})
    return frozenset(norm[i : i + SHINGLE] for i in range(len(norm) - SHINGLE + 1))


def near_duplicates(examples: Sequence[object], threshold: float = 0.9) -> list[tuple[int, int]]:
    """Index pairs (i < j, sorted) whose normalised character-5-gram sets have Jaccard
    similarity >= threshold. Exact, not sampled: candidates come from prefix filtering (two
    sets this similar must share one of their rarest few shingles), then each is verified,
    so a few thousand examples take well under a second instead of an all-pairs loop."""
    return near_duplicates_bounded(examples, threshold)[0]


def near_duplicates_bounded(
    examples: Sequence[object], threshold: float = 0.9, max_candidates: int | None = None
) -> tuple[list[tuple[int, int]], bool]:
    """near_duplicates, and whether the search was complete: many near-identical examples
    make every pair a candidate (n**2), so at most `max_candidates` pairs are collected and
    verified; past that the pairs found so far are returned with False."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    sets = [_shingles(example_text(ex)) for ex in examples]
    frequency: dict[str, int] = defaultdict(int)
    for s in sets:
        for g in s:
            frequency[g] += 1
    index: dict[str, list[int]] = defaultdict(list)
    candidates: set[tuple[int, int]] = set()
    complete = True
    for j, s in enumerate(sets):
        ordered = sorted(s, key=lambda g: (frequency[g], g))
        prefix = len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1
        for g in ordered[:prefix]:
            candidates.update((i, j) for i in index[g])
            index[g].append(j)
        if max_candidates is not None and len(candidates) > max_candidates:
            complete = False
            break
    pairs = []
    for i, j in candidates:
        a, b = sets[i], sets[j]
        if min(len(a), len(b)) < threshold * max(len(a), len(b)) - 1e-9:
            continue
        inter = len(a & b)
        if inter >= threshold * (len(a) + len(b) - inter) - 1e-9:
            pairs.append((i, j))
    return sorted(pairs), complete


def split_holdout(
    examples: Sequence[T], *, fraction: float, max_size: int, seed: int
) -> tuple[list[T], list[T]]:
    """(train, holdout): a seeded random `fraction` of the examples, at most `max_size`, and
    always leaving one to train on. Examples from the same source line (the pairs a ranked
    row expands to) stay on one side, so the holdout never sees a prompt trained on. Both
    lists keep file order."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0, got {max_size}")
    target = min(int(len(examples) * fraction), max_size, max(len(examples) - 1, 0))
    groups: dict[object, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        line = getattr(ex, "line", 0)
        groups[("line", line) if line else ("index", i)].append(i)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    chosen: set[int] = set()
    for group in order:
        if len(chosen) >= target:
            break
        if len(chosen) + len(group) <= target:
            chosen.update(group)
    train = [ex for i, ex in enumerate(examples) if i not in chosen]
    holdout = [ex for i, ex in enumerate(examples) if i in chosen]
    return train, holdout
