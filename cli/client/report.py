"""The dataset dry-run report (`POST /v1/files/{id}/validate`) as tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cli.client.output import console, table

_MAX_ISSUES = 20


def _summary(r: dict[str, Any]) -> Table:
    out = Table(title=f"{r['file_id']} on {r['model']} ({r['method']})", show_header=False)
    out.add_column(style="bold")
    out.add_column()
    plan, est = r["data"], r["estimate"]
    rows = [
        ("result", "[green]ok[/green]" if r["ok"] else "[red]has errors[/red]"),
        ("format", r["format"] or "unknown"),
        ("examples", f"{r['n_examples']} of {r['n_records']} records"),
        ("errors / warnings", f"{r['error_count']} / {r['warning_count']}"),
        ("split", f"train {plan['n_train']}, validation {plan['n_validation']}, "
                  f"test {plan['n_test']}, dropped {plan['n_dropped']}"),
        ("duplicates", f"{r['duplicates']['exact']} exact, {r['duplicates']['near']} near"),
        ("estimate", f"{est['n_epochs']} epochs × {est['tokens_per_epoch']} tokens = "
                     f"{est['trained_tokens']} tokens, ~{est['seconds']:.0f} s"),
    ]  # fmt: skip
    for name, value in rows:
        out.add_row(name, value)
    return out


def _tokens(t: dict[str, Any]) -> Table:
    out = Table(title="tokens per sequence", show_header=False)
    out.add_column(style="bold")
    out.add_column(justify="right")
    rows = [
        ("sequences", t["n_sequences"]),
        ("total / trained / prompt", f"{t['total_tokens']} / {t['trained_tokens']} / "
                                     f"{t['prompt_tokens']}"),
        ("min / mean / p50 / p95 / max", " / ".join(
            f"{t[k]:.0f}" for k in ("min", "mean", "p50", "p95", "max"))),
        (f"truncated (> {t['max_seq_length']})", f"{t['n_truncated']} "
                                                 f"({t['truncated_tokens']} tokens lost)"),
        ("skipped (nothing to train)", t["n_skipped"]),
    ]  # fmt: skip
    for name, value in rows:
        out.add_row(name, str(value))
    return out


def _issues(items: list[dict[str, Any]], title: str) -> Table:
    columns = [("line", "line"), ("field", "field"), ("code", "code"), ("message", "message")]
    shown = items[:_MAX_ISSUES]
    more = f" (first {_MAX_ISSUES} of {len(items)})" if len(items) > len(shown) else ""
    return table(shown, columns, title=title + more)


def render_validation(report: dict[str, Any]) -> None:
    console.print(_summary(report))
    console.print(_tokens(report["tokens"]))
    if report["errors"]:
        console.print(_issues(report["errors"], "errors"))
    if report["warnings"]:
        console.print(_issues(report["warnings"], "warnings"))
    for note in report["data"]["notes"]:
        console.print(f"• {note}")
