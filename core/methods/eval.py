"""`method.type: "eval"`: a job that trains nothing and benchmarks a model.

Recipe: load the model the job names (a base, or an `ft:` model or checkpoint: its artifact
over its base) → score it on the task files (the job's `training_file` and any
`evaluation.benchmark_files`, purpose 'evals', which the runner downloads) through lm-eval →
for a fine-tuned model, score the weights it was trained from the same way, so the two compare
→ report. The result carries no model (`model_task` None): the job succeeds with the report as
its `benchmarks` (`{"base": ..., "tuned": ...}` per task; a base model has only "base").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.evaluation import benchmarks, forgetting
from core.jobspec.recipe import TrainingContext, TrainingResult

Loaders = dict[str, Callable[[], tuple]]
"""Models to score, by report key ("base", "tuned", "step-N"): each loads (model, tokenizer)."""


def run(ctx: TrainingContext) -> TrainingResult:
    loaders = _loaders(ctx.base_model_path, ctx.parent_artifact_dir, ctx.device)
    found, _ = score(ctx.task_files, ctx.work_dir, loaders)
    evaluation = {"benchmarks": found}
    ctx.reporter.message(benchmarks.message(found), data=evaluation)
    return TrainingResult(
        artifact_dir=ctx.output_dir,
        adapter_type=ctx.spec.adapter.type,
        trained_tokens=0,
        hyperparameters={},
        model_task=None,
        evaluation=evaluation,
    )


def score(tasks: dict[str, Path], work: Path, loaders: Loaders) -> tuple[dict, dict[str, dict]]:
    """The report `{"harness", "tasks": {file id: {"kind", "examples", "base"/"tuned":
    metrics}}}`, and every loader's metrics by file id (checkpoints' rows are built from
    those): each model loaded, scored on every task file, and dropped before the next."""
    names = {f"lathe_task_{i}": file_id for i, file_id in enumerate(tasks)}
    include = benchmarks.write_tasks([(n, tasks[f]) for n, f in names.items()], work)
    scores: dict[str, dict] = {}
    for key, load in loaders.items():
        model, tokenizer = load()
        found = benchmarks.evaluate(model, tokenizer, list(names), include)
        scores[key] = {file_id: found[name] for name, file_id in names.items()}
        del model
    report = {}
    for file_id, path in tasks.items():
        kind, n = benchmarks.read_task_file(path)
        models = {k: v[file_id] for k, v in scores.items() if k in ("base", "tuned")}
        report[file_id] = {"kind": kind, "examples": n, **models}
    return {"harness": f"lm-eval {benchmarks.harness_version()}", "tasks": report}, scores


def _loaders(base: Path, artifact: Path | None, device: str) -> Loaders:
    """The model alone for a base; for a fine-tune, it and then its base under its tokenizer."""
    from core.model_store import load_artifact

    if artifact is None:
        return {"base": lambda: _plain(base, device)}
    tokenizers = []

    def tuned() -> tuple:
        model, tokenizer = load_artifact(base, artifact, device=device)
        tokenizers.append(tokenizer)
        return model, tokenizer

    return {
        "tuned": tuned,
        "base": lambda: (forgetting.load_start(base, None, device), tokenizers[0]),
    }


def _plain(path: Path, device: str) -> tuple:
    from transformers import AutoTokenizer

    return forgetting.load_start(path, None, device), AutoTokenizer.from_pretrained(path)
