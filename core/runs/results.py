"""A finished job's `fine-tune-results` files: the step metrics as CSV (OpenAI's columns) and
the same curves as a PNG, because a person would rather look at a loss curve than read one.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

CSV_FIELDS = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]


def step_metrics_csv(history: list[dict[str, Any]], path: Path) -> Path:
    """One row per step; valid_* are filled on the steps where an evaluation ran."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for row in history:
            writer.writerow(
                [
                    row.get("step"),
                    row.get("train_loss"),
                    row.get("train_mean_token_accuracy"),
                    row.get("valid_loss"),
                    row.get("valid_mean_token_accuracy"),
                ]
            )
    return path


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(h["step"], h[key]) for h in history if h.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def loss_curve_png(
    history: list[dict[str, Any]],
    path: Path,
    title: str,
    evaluation: dict[str, Any] | None = None,
) -> Path:
    """Loss (log scale) and token accuracy per step, train and validation; the starting model's
    validation numbers as dashed lines, so the gain from fine-tuning is visible at a glance."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(9, 7), dpi=110, layout="constrained")
    loss_ax, acc_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    base = (evaluation or {}).get("base") or {}
    for ax, key, label in (
        (loss_ax, "loss", "loss"),
        (acc_ax, "mean_token_accuracy", "token accuracy"),
    ):
        ax.plot(*_series(history, f"train_{key}"), color="tab:blue", lw=1.2, label=f"train {label}")
        steps, values = _series(history, f"valid_{key}")
        if steps:
            ax.plot(
                steps,
                values,
                color="tab:orange",
                lw=1.8,
                marker="o",
                ms=4,
                label=f"validation {label}",
            )
        if f"valid_{key}" in base:
            ax.axhline(
                base[f"valid_{key}"],
                color="tab:gray",
                ls="--",
                lw=1,
                label=f"validation {label} before fine-tuning",
            )
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    losses = [h[k] for h in history for k in ("train_loss", "valid_loss") if h.get(k) is not None]
    if losses and min(losses) > 0:  # losses falling by orders of magnitude read best on a log axis
        loss_ax.set_yscale("log")
    acc_ax.set_ylim(0, 1.02)
    acc_ax.set_xlabel("step")
    tuned = (evaluation or {}).get("tuned") or {}
    if "valid_loss" in base and "valid_loss" in tuned:
        title += (
            f"\nvalidation loss {base['valid_loss']:.4g} before → "
            f"{tuned['valid_loss']:.4g} after fine-tuning"
        )
    loss_ax.set_title(title, fontsize=10)
    fig.savefig(path)
    return path
