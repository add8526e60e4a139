"""Eval-gated fine-tuning: a job's evals (`evaluation.evals`) run on its final weights and on
every checkpoint it keeps, after training, inside the training process.

Each (eval, candidate) pair is an ordinary eval run of that eval — listed by
`client.evals.runs.list`, its output items readable, its metadata naming the job and the
candidate — executed by core.evals.execute with the candidate answering in process (the
weights are loaded here already; the final ones are not published yet). Judges still answer
through the inference service. The pass rates join the job's benchmark report as a task
keyed by the eval id with the metric `pass_rate`, so `evaluation.select_best` can choose by
them exactly as it chooses by an lm-eval metric.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core.evals.execute import execute
from core.evals.reconcile import JOB_OWNER
from core.evals.tools import service_tools
from core.ids import new_id
from core.persistence.db import session_scope
from core.persistence.eval_models import Eval, EvalRun
from core.persistence.models import utcnow
from core.settings import Settings

PASS_RATE = "pass_rate"
FINAL = "tuned"
"""The final model's key among the candidates (core.runs.checkpoint_benchmarks' FINAL)."""


def local_sampler(model: Any, tokenizer: Any) -> Callable[[list, dict], dict]:
    """(messages, body) → a chat.completion dict from weights loaded in this process."""
    import torch

    def sample(messages: list[dict[str, str]], body: dict[str, Any]) -> dict[str, Any]:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = ids.to(model.device)
        greedy = body["temperature"] == 0
        if body.get("seed") is not None:
            torch.manual_seed(body["seed"])
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=body["max_tokens"],
                do_sample=not greedy,
                temperature=None if greedy else body["temperature"],
                top_p=None if greedy else body["top_p"],
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        new = out[0, ids.shape[1] :]
        answer = tokenizer.decode(new, skip_special_tokens=True).strip()
        done = len(new) < body["max_tokens"]
        usage = {"prompt_tokens": ids.shape[1], "completion_tokens": len(new)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "choices": [
                {
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop" if done else "length",
                }  # fmt: skip
            ],
            "usage": usage,
        }

    return sample


def _new_run(
    settings: Settings, job: Any, entry: dict, key: str, model_name: str, owner: str
) -> str:
    with session_scope(settings.resolved_database_url) as session:
        ev = session.get(Eval, entry["eval_id"])
        if ev is None or ev.organization_id != job.organization_id:
            from core.errors import NotFound

            raise NotFound(f"the eval {entry['eval_id']} was deleted", param="evaluation.evals")
        run = EvalRun(
            id=new_id("evalrun_", 32),
            eval_id=ev.id,
            organization_id=job.organization_id,
            name=f"{job.id} {key}",
            model=model_name,
            metadata_={"fine_tuning_job": job.id, "candidate": key},
            data_source={**entry["data_source"], "model": model_name},
            status="in_progress",  # held by the job from the start, never offered to a worker
            lease_owner=owner,
            lease_expires_at=utcnow() + timedelta(seconds=settings.jobs.lease_timeout_s),
            result_counts={"total": 0, "passed": 0, "failed": 0, "errored": 0},
            per_testing_criteria_results={},
            per_model_usage={},
        )
        session.add(run)
        return run.id


def _pass_rate(settings: Settings, run_id: str) -> dict[str, Any]:
    with session_scope(settings.resolved_database_url) as session:
        run = session.get(EvalRun, run_id)
        counts = dict(run.result_counts)
    total = counts.get("total", 0)
    rate = counts.get("passed", 0) / total if total else 0.0
    return {PASS_RATE: rate, "run_id": run_id, "examples": total}


def run_job_evals(
    settings: Settings,
    job: Any,
    entries: list[dict[str, Any]],
    loaders: dict[str, Callable[[], tuple]],
    names: dict[str, str],
) -> dict[str, dict[str, dict[str, Any]]]:
    """{eval id: {candidate key: {pass_rate, run_id}}}: each candidate loaded once, every
    eval run on it. `names` maps a candidate key to the model name its runs report."""
    tools, _ = service_tools(settings, job.organization_id)
    scores: dict[str, dict[str, dict[str, Any]]] = {e["eval_id"]: {} for e in entries}
    for key, load in loaders.items():
        model, tokenizer = load()
        sampler = local_sampler(model, tokenizer)
        for entry in entries:
            owner = f"{JOB_OWNER}{job.id}"
            run_id = _new_run(settings, job, entry, key, names[key], owner)
            execute(settings, run_id, owner, tools, sampler, shared=False)
            scores[entry["eval_id"]][key] = _pass_rate(settings, run_id)
        del model
    return scores


def merge_into_report(found: dict[str, Any], scores: dict[str, dict[str, dict]]) -> None:
    """Add each eval as a task of the benchmark report: `tasks[eval_id].tuned.pass_rate` and
    each checkpoint row's `tasks[eval_id].pass_rate` (what select_best reads)."""
    for eval_id, by_key in scores.items():
        found.setdefault("tasks", {})[eval_id] = {
            "kind": "eval",
            "examples": by_key[FINAL]["examples"],
            FINAL: {PASS_RATE: by_key[FINAL][PASS_RATE]},
            "run_id": by_key[FINAL]["run_id"],
        }
        for row in found.get("checkpoints", []):
            score = by_key[f"step-{row['step']}"]
            row.setdefault("tasks", {})[eval_id] = {PASS_RATE: score[PASS_RATE]}
            row.setdefault("eval_runs", {})[eval_id] = score["run_id"]
