"""The checks a job runs after its method saved the artifact and before publishing, on the
starting and the tuned model: the forgetting check (core.evaluation.forgetting: a general
set's loss, `evaluation.forgetting`, a warning event past the threshold) and benchmarks
(core.evaluation.benchmarks: lm-eval on the job's task files, `evaluation.benchmarks`)."""

from __future__ import annotations

from pathlib import Path

from core.data import DataError, ensure_valid, read_dataset
from core.data.examples import Example
from core.evaluation import benchmarks, forgetting
from core.jobspec.recipe import Reporter, TrainingResult
from core.methods.eval import Loaders, score
from core.persistence.models import File
from core.retry import db_retry
from core.runs import checkpoint_benchmarks as cb
from core.runs.context import RunContext
from core.runs.failures import JobFailure
from core.runs.weights import StartWeights
from core.settings import Settings
from core.storage import worker_storage

CAUSAL_LM = "causal_lm"


def run_checks(
    run: RunContext, result: TrainingResult, weights: StartWeights, reporter: Reporter
) -> None:
    """Both checks, each only when the job asks for it and its result is a causal LM."""
    if result.model_task != CAUSAL_LM or result.stopped_early:
        return
    run_forgetting_check(run, result, weights, reporter)
    if run.spec.evaluation.benchmark_files or run.spec.evaluation.evals:
        run_benchmarks(run, result, weights, reporter)


def run_forgetting_check(
    run: RunContext, result: TrainingResult, weights: StartWeights, reporter: Reporter
) -> None:
    """Adds `forgetting` to `result.evaluation` when the job asks for the check."""
    options = run.spec.evaluation
    if not forgetting.wanted(options.forgetting_check, run.job.base_model, options.general_file):
        return
    if options.general_file is not None:
        examples = _general_file(run.settings, options.general_file, run.work)
        source = options.general_file
    else:
        examples, source = forgetting.builtin_general_set(), "builtin"
    found = forgetting.check(
        weights.path,
        weights.parent,
        result.artifact_dir,
        examples,
        threshold=options.forgetting_threshold,
        source=source,
        device=run.device,
    )
    result.evaluation = {**(result.evaluation or {}), "forgetting": found}
    level = "warn" if found["exceeded"] else "info"
    reporter.message(forgetting.message(found), level=level, data={"forgetting": found})


def run_benchmarks(
    run: RunContext, result: TrainingResult, weights: StartWeights, reporter: Reporter
) -> None:
    """lm-eval on each task file, tuned model then starting model (one in memory at a time,
    both with the tuned model's tokenizer)."""
    from core.model_store import load_artifact

    settings, device = run.settings, run.device
    tokenizers = []

    def tuned() -> tuple:
        model, tokenizer = load_artifact(weights.path, result.artifact_dir, device=device)
        tokenizers.append(tokenizer)
        return model, tokenizer

    loaders = {
        "tuned": tuned,
        "base": lambda: (
            forgetting.load_start(weights.path, weights.parent, device),
            tokenizers[0],
        ),
    }
    options = run.spec.evaluation
    kept = cb.kept_checkpoints(settings, run.job_id) if options.benchmark_checkpoints else []
    loaders |= cb.checkpoint_loaders(settings, kept, weights.path, device)
    found = benchmark_report(settings, options.benchmark_files or [], run.work, loaders, kept)
    if options.evals:  # core.evals.gate: each eval run on the final weights and checkpoints
        from core.evals import gate

        names = {"tuned": f"{run.job_id}:final"} | {f"step-{s}": m.id for s, m in kept}
        candidates = {k: v for k, v in loaders.items() if k != "base"}
        entries = [e.model_dump() for e in options.evals]
        found_evals = gate.run_job_evals(settings, run.job, entries, candidates, names)
        gate.merge_into_report(found, found_evals)
    result.evaluation = {**(result.evaluation or {}), "benchmarks": found}
    reporter.message(benchmarks.message(found), data={"benchmarks": found})
    if options.select_best is not None:
        chosen = cb.select_best(settings, found, options.select_best, result.artifact_dir)
        found["selected"] = chosen
        reporter.message(cb.message(chosen), data={"selected": chosen})


def benchmark_report(
    settings: Settings,
    files: list[str],
    work: Path,
    loaders: Loaders,
    kept: list | None = None,
) -> dict:
    """{"harness", "tasks": {file id: {"kind", "examples", "base"/"tuned": metrics}}}, and
    with `kept` checkpoints (their loaders keyed `step-N`) "checkpoints": each (model,
    tokenizer) of `loaders` scored on every task file, loaded one at a time."""
    if not files and kept:  # evals only (core.evals.gate fills the checkpoint rows)
        rows = [{"step": s, "fine_tuned_model_checkpoint": m.id, "tasks": {}} for s, m in kept]
        return {"harness": None, "tasks": {}, "checkpoints": rows}
    if not files:
        return {"harness": None, "tasks": {}}
    named: dict[str, str] = {}
    for i, file_id in enumerate(files):
        named.setdefault(file_id, f"evaluation.benchmark_files[{i}]")
    found, scores = score(download_tasks(settings, named, work), work, loaders)
    if kept:
        found["checkpoints"] = cb.checkpoint_report(kept, scores, {f: f for f in named})
    return found


def download_tasks(settings: Settings, named: dict[str, str], work: Path) -> dict[str, Path]:
    """{file id: local path} of task files given as {file id: the field that names it}."""
    where = work / "benchmarks"
    return {file_id: _download(settings, file_id, where, param) for file_id, param in named.items()}


def _download(settings: Settings, file_id: str, where: Path, param: str) -> Path:
    def lookup(session):
        row = session.get(File, file_id)
        if row is not None:
            session.expunge(row)
        return row

    row = db_retry(settings, "file lookup", lookup)
    if row is None:
        raise JobFailure("file_not_found", f"{param} {file_id} was deleted", param)
    return worker_storage(settings).download(row.storage_key, where / file_id / row.filename)


def _general_file(settings: Settings, file_id: str, work: Path) -> list[Example]:
    param = "evaluation.general_file"
    path = _download(settings, file_id, work / "general", param)
    report, examples = read_dataset(path, path.name, method="supervised")
    try:
        ensure_valid(report)
    except DataError as exc:
        raise JobFailure("invalid_general_file", f"{file_id}: {exc}", param) from exc
    return examples
