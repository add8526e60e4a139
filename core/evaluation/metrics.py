"""Scores of a classifier's predictions, shared by training (core.methods.classification) and
the fairness report (core.evaluation.fairness)."""

from __future__ import annotations


def classification_metrics(
    predictions: list[int], labels: list[int], n_classes: int
) -> dict[str, float]:
    """Accuracy and macro-F1 over class ids; a class that neither occurs nor is predicted
    has no F1 and is left out of the mean."""
    pairs = list(zip(predictions, labels, strict=True))
    accuracy = sum(p == t for p, t in pairs) / max(len(pairs), 1)
    f1s = []
    for c in range(n_classes):
        tp = sum(p == c and t == c for p, t in pairs)
        predicted = sum(p == c for p, _ in pairs)
        actual = sum(t == c for _, t in pairs)
        if predicted + actual:
            f1s.append(2 * tp / (predicted + actual))
    return {"label_accuracy": accuracy, "macro_f1": sum(f1s) / max(len(f1s), 1)}
