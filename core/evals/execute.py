"""An eval run, executed on a worker: each row sampled (a completions data source: the model
through the inference service) and graded by every testing criterion, one output item stored
per row.

Resumable: a row's output item and the run's counts are committed together, and the rows
already stored are skipped, so a run taken back after its worker died (its lease expired,
core.evals.reconcile) carries on from the first row it lacks. A run that was cancelled or
deleted stops before its next row. At most LATHE_MAX_RUNNING_EVAL_RUNS_PER_ORG runs of one
organization execute at once: a worker handed another leaves it queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select

from core.errors import LatheError
from core.evals import sources
from core.evals.criteria import Criterion, parse_criteria
from core.evals.spec import CompletionsDataSource, DataSource, FileContentSource
from core.graders.base import GraderTools
from core.graders.grade import bind
from core.graders.run import run_grader
from core.graders.templates import GraderError
from core.ids import new_id
from core.persistence.db import session_scope
from core.persistence.eval_models import Eval, EvalOutputItem, EvalRun
from core.persistence.models import utcnow
from core.settings import Settings

log = logging.getLogger("lathe.evals")
DEFAULT_SAMPLE_TOKENS = 256
Sampler = Callable[[list[dict[str, str]], dict[str, Any]], dict[str, Any]]
"""(messages, sampling body) → an OpenAI chat.completion dict (raises on failure)."""


@dataclass
class Claimed:
    run_id: str
    org_id: str
    eval_id: str
    data_source: Any
    criteria_specs: list[dict[str, Any]]
    done: set[int]


def claim(settings: Settings, run_id: str, owner: str, shared: bool = True) -> Claimed | None:
    """Take the run (queued, or in progress under a lease that expired or is this owner's);
    None when it is finished, deleted, held by a live worker, or (`shared`: a run on the
    workers' queue) its organization already runs its share of eval runs."""
    now = utcnow()
    with session_scope(settings.resolved_database_url) as session:
        run = session.get(EvalRun, run_id, with_for_update=True)
        if run is None or run.status not in ("queued", "in_progress"):
            return None
        expires = run.lease_expires_at
        live = expires is not None and expires > now
        if run.status == "in_progress" and live and run.lease_owner != owner:
            return None
        running = (
            0
            if not shared
            else session.scalar(
                select(func.count(EvalRun.id)).where(
                    EvalRun.organization_id == run.organization_id,
                    EvalRun.status == "in_progress",
                    EvalRun.id != run.id,
                    EvalRun.lease_expires_at > now,
                )
            )
        )
        if running >= settings.evals.max_running_runs_per_org:
            run.enqueued_at = now  # the reconciler offers it again later
            return None
        ev = session.get(Eval, run.eval_id)
        run.status, run.lease_owner = "in_progress", owner
        run.lease_expires_at = now + timedelta(seconds=settings.jobs.lease_timeout_s)
        run.started_at = run.started_at or now
        run.attempts += 1
        done = set(
            session.scalars(
                select(EvalOutputItem.item_index).where(EvalOutputItem.run_id == run_id)
            )
        )
        source = TypeAdapter(DataSource).validate_python(run.data_source)
        return Claimed(run.id, run.organization_id, run.eval_id, source, ev.testing_criteria, done)


def _rows(settings: Settings, claimed: Claimed) -> list[dict[str, Any]]:
    source = claimed.data_source.source
    if isinstance(source, FileContentSource):
        return sources.content_rows(source)
    from core.persistence.models import File
    from core.storage import worker_storage

    with session_scope(settings.resolved_database_url) as session:
        row = session.get(File, source.id)
        key = None if row is None or row.organization_id != claimed.org_id else row.storage_key
    if key is None:
        raise LatheError(f"the source file {source.id} was deleted", code="file_not_found")
    data = b"".join(worker_storage(settings).iter_bytes(key))
    return sources.parse_jsonl(data, "data_source.source.id", settings.evals.max_items)


def _sample_body(source: CompletionsDataSource, messages: list[dict[str, str]]) -> dict[str, Any]:
    params = source.sampling_params
    body: dict[str, Any] = {
        "model": source.model,
        "n": 1,
        "stream": False,
        "messages": messages,
        "max_tokens": (params and params.max_completion_tokens) or DEFAULT_SAMPLE_TOKENS,
        "temperature": 1.0 if params is None or params.temperature is None else params.temperature,
        "top_p": 1.0 if params is None or params.top_p is None else params.top_p,
    }
    if params is not None and params.seed is not None:
        body["seed"] = params.seed
    if params is not None and params.response_format is not None:
        body["response_format"] = params.response_format
    return body


def sample_row(
    source: CompletionsDataSource | None, row: dict[str, Any], sampler: Sampler | None
) -> tuple[str, dict[str, Any]]:
    """(the text graded as {{sample.output_text}}, the output item's `sample`)."""
    if source is None:  # jsonl: the row brings its sample
        given = row.get("sample") or {}
        text = given.get("output_text") or ""
        return text, {**given, "output": [{"role": "assistant", "content": text}], "error": None}
    shown: dict[str, Any] = {"model": source.model, "input": [], "output": [], "error": None}
    try:
        messages = sources.prompt(source, row["item"])
        shown["input"] = messages
        body = _sample_body(source, messages)
        shown |= {
            "temperature": body["temperature"],
            "top_p": body["top_p"],
            "max_completion_tokens": body["max_tokens"],
            "seed": body.get("seed"),
        }
        answer = sampler(messages, body)  # type: ignore[misc]
        choice = answer["choices"][0]
        text = choice["message"].get("content") or ""
    except (LatheError, GraderError, TimeoutError, KeyError, IndexError, TypeError) as exc:
        shown["error"] = {"code": getattr(exc, "code", None) or "sample_error", "message": str(exc)}
        return "", shown
    usage = answer.get("usage") or {}
    shown |= {
        "output": [{"role": "assistant", "content": text}],
        "finish_reason": choice.get("finish_reason"),
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "total_tokens": int(usage.get("total_tokens") or 0),
            "cached_tokens": 0,
        },
    }
    return text, shown


def grade_row(
    criteria: list[Criterion], tools: GraderTools, text: str, item: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]], bool]:
    """(each criterion's result, judge usage by model, whether any grader errored)."""
    results, usage, errored = [], {}, False
    for criterion in criteria:
        tools.usage = {}
        found = run_grader(criterion.grader, text, item, tools)
        flags = {k: v for k, v in found["metadata"]["errors"].items() if v}
        failed = bool(flags)
        errored |= failed
        results.append(
            {
                "name": criterion.name,
                "type": criterion.grader.type,
                "score": found["reward"],
                "passed": not failed and found["reward"] >= criterion.threshold,
                "pass_threshold": criterion.threshold,
                "sample": None,
                **({"errors": flags} if failed else {}),
                **({"sub_rewards": found["sub_rewards"]} if found["sub_rewards"] else {}),
            }
        )
        for model, counts in tools.usage.items():
            entry = usage.setdefault(model, {"invocation_count": 0})
            entry["invocation_count"] += 1
            for key, value in counts.items():
                entry[key] = entry.get(key, 0) + value
    return results, usage, errored


def _add_usage(total: dict[str, Any], model: str, counts: dict[str, int], calls: int) -> None:
    entry = dict(total.get(model) or {})
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"):
        entry[key] = entry.get(key, 0) + int(counts.get(key, 0))
    entry["invocation_count"] = entry.get("invocation_count", 0) + calls
    total[model] = entry


def store_item(
    settings: Settings,
    claimed: Claimed,
    owner: str,
    index: int,
    row: dict[str, Any],
    outcome: tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], bool],
) -> bool:
    """Commit one output item with the run's counts; False when the run was cancelled,
    deleted or taken by another worker (nothing is stored then)."""
    results, sample, judge_usage, errored = outcome
    status = "error" if errored or sample.get("error") else "fail"
    if status == "fail" and all(r["passed"] for r in results):
        status = "pass"
    with session_scope(settings.resolved_database_url) as session:
        run = session.get(EvalRun, claimed.run_id, with_for_update=True)
        if run is None or run.status != "in_progress" or run.lease_owner != owner:
            return False
        counts = dict(run.result_counts)
        counts["total"] = counts.get("total", 0) + 1
        key = {"pass": "passed", "fail": "failed", "error": "errored"}[status]
        counts[key] = counts.get(key, 0) + 1
        per = {name: dict(v) for name, v in run.per_testing_criteria_results.items()}
        for result in results:
            slot = per.setdefault(result["name"], {"passed": 0, "failed": 0})
            slot["passed" if result["passed"] else "failed"] += 1
        usage = {m: dict(v) for m, v in run.per_model_usage.items()}
        if "usage" in sample:
            _add_usage(usage, sample["model"], sample["usage"], 1)
        for model, counted in judge_usage.items():
            _add_usage(usage, model, counted, counted["invocation_count"])
        run.result_counts, run.per_testing_criteria_results = counts, per
        run.per_model_usage = usage
        run.lease_expires_at = utcnow() + timedelta(seconds=settings.jobs.lease_timeout_s)
        session.add(
            EvalOutputItem(
                id=new_id("outputitem_", 32),
                run_id=run.id,
                eval_id=run.eval_id,
                organization_id=run.organization_id,
                item_index=index,
                status=status,
                datasource_item=row["item"],
                results=results,
                sample=sample,
            )
        )
    return True


def finish(
    settings: Settings, run_id: str, owner: str, status: str, error: dict | None = None
) -> None:
    with session_scope(settings.resolved_database_url) as session:
        run = session.get(EvalRun, run_id, with_for_update=True)
        if run is None or run.status != "in_progress" or run.lease_owner != owner:
            return
        run.status, run.error, run.finished_at = status, error, utcnow()
        run.lease_owner = run.lease_expires_at = None


def execute(
    settings: Settings,
    run_id: str,
    owner: str,
    tools: GraderTools,
    sampler: Sampler | None,
    shared: bool = True,
) -> str | None:
    """Run (or resume) the eval run; its final status, or None if it was not claimed or
    stopped (cancelled, deleted, taken over). `shared=False`: a fine-tuning job's own run
    (core.evals.gate), which its organization's share of queued runs does not hold back."""
    claimed = claim(settings, run_id, owner, shared)
    if claimed is None:
        return None
    try:
        rows = _rows(settings, claimed)
        criteria = parse_criteria(claimed.criteria_specs, settings)
    except LatheError as exc:
        finish(
            settings, run_id, owner, "failed", {"code": exc.code or "invalid", "message": str(exc)}
        )
        return "failed"
    for criterion in criteria:
        bind(criterion.grader, tools)
    source = claimed.data_source
    completions = source if isinstance(source, CompletionsDataSource) else None
    for index, row in enumerate(rows):
        if index in claimed.done:
            continue
        text, sample = sample_row(completions, row, sampler)
        results, usage, errored = grade_row(criteria, tools, text, row["item"])
        if not store_item(settings, claimed, owner, index, row, (results, sample, usage, errored)):
            log.info("eval run %s stopped at row %d (cancelled or taken over)", run_id, index)
            return None
    finish(settings, run_id, owner, "completed")
    return "completed"
