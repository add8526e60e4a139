"""The fairness report of a classifier: per-group metrics and the gaps that define equal
opportunity and equalized odds (Hardt et al., 2016, https://arxiv.org/abs/1610.02413).

Rows carry an optional `group` (validation and test files). Per group: accuracy, macro-F1,
and the true/false positive rates — for two classes of the positive class (the second in
label order: "1", "yes", "pos"...), for more classes the mean one-vs-rest rate over classes.
Equal opportunity asks for equal TPRs across groups: its gap is max − min TPR; equalized odds
also for equal FPRs: its gap is the larger of the TPR and FPR gaps.

`reweighed` resamples the training rows so that group and label are independent
(Kamiran & Calders' reweighing, https://doi.org/10.1007/s10115-011-0463-8): a row of cell
(g, y) is drawn with weight P(g)·P(y) / P(g, y), up-weighting the under-represented cells.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from core.evaluation.metrics import classification_metrics


def _rates(pairs: list[tuple[int, int]], c: int) -> tuple[float | None, float | None]:
    """(TPR, FPR) of class `c` one-vs-rest; None where undefined (no positives/negatives)."""
    pos = [p for p, t in pairs if t == c]
    neg = [p for p, t in pairs if t != c]
    tpr = sum(p == c for p in pos) / len(pos) if pos else None
    fpr = sum(p == c for p in neg) / len(neg) if neg else None
    return tpr, fpr


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def group_metrics(pairs: list[tuple[int, int]], n_classes: int) -> dict[str, Any]:
    """accuracy, macro_f1, tpr, fpr of (predicted, true) class-id pairs."""
    scores = classification_metrics([p for p, _ in pairs], [t for _, t in pairs], n_classes)
    classes = [1] if n_classes == 2 else list(range(n_classes))
    rates = [_rates(pairs, c) for c in classes]
    return {
        "examples": len(pairs),
        "accuracy": scores["label_accuracy"],
        "macro_f1": scores["macro_f1"],
        "tpr": _mean([r[0] for r in rates]),
        "fpr": _mean([r[1] for r in rates]),
    }


def _gap(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return max(kept) - min(kept) if len(kept) >= 2 else None


def report(
    predicted: list[int], actual: list[int], groups: list[str | None], n_classes: int
) -> dict[str, Any]:
    """{"groups": {name: metrics}, "accuracy_gap", "equal_opportunity_gap",
    "equalized_odds_gap"}; rows without a group are left out."""
    by_group: dict[str, list[tuple[int, int]]] = {}
    for p, t, g in zip(predicted, actual, groups, strict=True):
        if g is not None:
            by_group.setdefault(g, []).append((p, t))
    per = {g: group_metrics(pairs, n_classes) for g, pairs in sorted(by_group.items())}
    tpr_gap = _gap([m["tpr"] for m in per.values()])
    fpr_gap = _gap([m["fpr"] for m in per.values()])
    odds = None if tpr_gap is None and fpr_gap is None else max(tpr_gap or 0.0, fpr_gap or 0.0)
    return {
        "groups": per,
        "accuracy_gap": _gap([m["accuracy"] for m in per.values()]),
        "equal_opportunity_gap": tpr_gap,
        "equalized_odds_gap": odds,
    }


def reweighed(examples: list, seed: int) -> list:
    """As many rows as `examples`, drawn (seeded, with replacement) with reweighing's weights;
    rows without a group keep weight 1."""
    cells = Counter((ex.group, ex.label) for ex in examples)
    groups = Counter(ex.group for ex in examples)
    labels = Counter(ex.label for ex in examples)
    n = len(examples)
    weights = [
        1.0
        if ex.group is None
        else (groups[ex.group] / n) * (labels[ex.label] / n) / (cells[(ex.group, ex.label)] / n)
        for ex in examples
    ]
    return random.Random(seed).choices(examples, weights=weights, k=n)


def trainer_report(trainer: Any, dataset: Any, examples: list, n_classes: int) -> dict | None:
    """The report of the model in `trainer` as it is now, on `dataset` (the tokenized
    `examples`, in order); None when no row has a group."""
    groups = [getattr(ex, "group", None) for ex in examples]
    if dataset is None or all(g is None for g in groups):
        return None
    out = trainer.predict(dataset)
    predicted = out.predictions.argmax(-1).tolist()
    return report(predicted, out.label_ids.tolist(), groups, n_classes)


def job_fairness(base: dict | None, tuned: dict | None, split: str) -> dict | None:
    """The job's `fairness`: both reports on one split."""
    if base is None or tuned is None:
        return None
    return {"split": split, "base": base, "tuned": tuned}


def message(found: dict) -> str:
    """The job event's sentence: the gaps before → after."""

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    parts = [
        f"{name.replace('_', ' ')} {fmt(found['base'][name])} → {fmt(found['tuned'][name])}"
        for name in ("accuracy_gap", "equal_opportunity_gap", "equalized_odds_gap")
    ]
    groups = ", ".join(found["tuned"]["groups"])
    return f"Fairness on the {found['split']} set (groups {groups}): " + "; ".join(parts)
