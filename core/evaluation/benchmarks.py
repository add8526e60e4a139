"""Benchmarks through EleutherAI's lm-evaluation-harness (`lm_eval`), on local task files.

A task file (uploaded with purpose `evals`) is JSONL of one kind of row:
- multiple choice `{"query", "choices": [...], "gold": index}`: each choice's log-likelihood
  after the query (appended as written: "The capital of France is" + " Paris"); accuracy, and
  accuracy normalised by the choice's length (`acc`, `acc_norm`);
- exact match `{"prompt", "answer"}`: greedy generation up to a newline or the end token,
  `exact_match`;
- perplexity `{"text"}`: rolling log-likelihood, `word_perplexity`, `byte_perplexity`,
  `bits_per_byte`.
Each file becomes an lm-eval task (a YAML config over the local JSON, built here): nothing is
downloaded at run time. The model is evaluated in process (lm-eval's HFLM over a loaded model),
so a base, an adapter on it, or a full fine-tune are scored by the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KINDS = {
    "multiple_choice": frozenset({"query", "choices", "gold"}),
    "exact_match": frozenset({"prompt", "answer"}),
    "perplexity": frozenset({"text"}),
}
MAX_ROWS = 2000
"""A task file's row limit: benchmarks run on the worker, bounded like training data."""


class TaskFileError(ValueError):
    """The file is not a task file; the message names the line."""


def _kind(row: Any, line: int) -> str:
    if not isinstance(row, dict):
        raise TaskFileError(f"line {line}: a row is a JSON object")
    for kind, keys in KINDS.items():
        if keys <= row.keys():
            return kind
    raise TaskFileError(
        f"line {line}: a row has query/choices/gold (multiple choice), prompt/answer (exact "
        "match) or text (perplexity)"
    )


def _check_row(kind: str, row: dict, line: int) -> None:
    if kind == "multiple_choice":
        choices, gold = row["choices"], row["gold"]
        if not (isinstance(choices, list) and len(choices) >= 2):
            raise TaskFileError(f"line {line}: choices: at least two strings")
        if not all(isinstance(c, str) and c for c in choices):
            raise TaskFileError(f"line {line}: choices: non-empty strings")
        if not (isinstance(gold, int) and 0 <= gold < len(choices)):
            raise TaskFileError(f"line {line}: gold: the index of the right choice")
        fields = ["query"]
    else:
        fields = sorted(KINDS[kind])
    for name in fields:
        if not (isinstance(row[name], str) and row[name]):
            raise TaskFileError(f"line {line}: {name}: a non-empty string")


def read_task_file(path: Path) -> tuple[str, int]:
    """(kind, rows) of a task file; TaskFileError naming the first bad line."""
    kind, n = None, 0
    with open(path, encoding="utf-8", errors="strict") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError as exc:
                raise TaskFileError(f"line {line}: not JSON ({exc})") from None
            this = _kind(row, line)
            if kind is not None and this != kind:
                raise TaskFileError(f"line {line}: a {this} row in a {kind} task file")
            kind = this
            _check_row(kind, row, line)
            n += 1
            if n > MAX_ROWS:
                raise TaskFileError(f"more than {MAX_ROWS} rows")
    if kind is None:
        raise TaskFileError("no rows")
    return kind, n


def task_config(name: str, kind: str, data: Path) -> dict[str, Any]:
    """The lm-eval task config of one local file."""
    config: dict[str, Any] = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {
            "data_files": {"test": str(data)},
            "cache_dir": str(data.parent / "hf_datasets"),  # the job's own, not ~/.cache
        },
        "test_split": "test",
    }
    if kind == "multiple_choice":
        return config | {
            "output_type": "multiple_choice",
            "target_delimiter": "",  # a choice follows its query as written
            "doc_to_text": "{{query}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{gold}}",
            "metric_list": [
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        }
    if kind == "exact_match":
        return config | {
            "output_type": "generate_until",
            "doc_to_text": "{{prompt}}",
            "doc_to_target": "{{answer}}",
            "target_delimiter": "",
            "generation_kwargs": {"until": ["\n"], "do_sample": False, "max_gen_toks": 32},
            "metric_list": [
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "regexes_to_ignore": [r"^\s+", r"\s+$"],  # surrounding spaces
                }
            ],
        }
    return config | {
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "metric_list": [  # their aggregations are lm-eval's registered defaults
            {"metric": m} for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")
        ],
    }


def write_tasks(tasks: list[tuple[str, Path]], work: Path) -> Path:
    """One YAML config per (name, data file) under `work`; returns the include path."""
    import yaml

    root = work / "lm_eval_tasks"
    root.mkdir(parents=True, exist_ok=True)
    for name, data in tasks:
        kind, _ = read_task_file(data)
        (root / f"{name}.yaml").write_text(yaml.safe_dump(task_config(name, kind, data)))
    return root


def evaluate(model: Any, tokenizer: Any, names: list[str], include: Path) -> dict[str, dict]:
    """{task: {metric: value}} for an in-memory model, through lm-eval's HFLM."""
    import os

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only: never the hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device=device)
    manager = TaskManager(include_path=str(include), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model=lm, tasks=names, task_manager=manager, log_samples=False, random_seed=0
    )
    return {name: _metrics(out["results"][name]) for name in names}


def _metrics(raw: dict[str, Any]) -> dict[str, float]:
    """lm-eval's `acc,none` / `acc_stderr,none` keys as `acc` / `acc_stderr`."""
    metrics = {}
    for key, value in raw.items():
        if "," in key and isinstance(value, int | float):
            metrics[key.split(",")[0]] = float(value)
    return metrics


def harness_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


METRICS = {
    "multiple_choice": ("acc", "acc_norm"),
    "exact_match": ("exact_match",),
    "perplexity": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
}
"""The metrics each kind of task reports (besides their *_stderr): what select_best may name."""

HEADLINE = {
    "multiple_choice": "acc",
    "exact_match": "exact_match",
    "perplexity": "word_perplexity",
    "eval": "pass_rate",  # one of evaluation.evals (core.evals.gate)
}
"""The metric a task's event sentence quotes."""


def message(found: dict[str, Any]) -> str:
    """The job event's sentence: each task's headline metric, base → tuned (base alone for
    an eval job on a base model)."""
    parts = []
    for file_id, task in found["tasks"].items():
        metric = HEADLINE[task["kind"]]
        text = f"{file_id} ({task['kind']}, {task['examples']} rows) {metric} "
        base, tuned = task.get("base"), task.get("tuned")  # an eval (core.evals.gate): no base
        scores = [f"{m[metric]:.3f}" for m in (base, tuned) if m is not None]
        text += " → ".join(scores)
        parts.append(text)
    for row in found.get("checkpoints", []):  # evaluation.benchmark_checkpoints
        scores = ", ".join(
            f"{file_id} {HEADLINE[found['tasks'][file_id]['kind']]} "
            f"{metrics[HEADLINE[found['tasks'][file_id]['kind']]]:.3f}"
            for file_id, metrics in row["tasks"].items()
        )
        parts.append(f"checkpoint step {row['step']}: {scores}")
    return f"Benchmarks ({found['harness']}): " + "; ".join(parts)
