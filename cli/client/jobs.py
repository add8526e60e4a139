"""`lathe jobs create|list|get|cancel|pause|resume|watch|events`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli.client.config import UsageError
from cli.client.http import ApiClient
from cli.client.output import console, fields, print_json, show_list, when

JOB_FIELDS = ("id", "status", "model", "fine_tuned_model", "training_file", "validation_file",
              "created_at", "finished_at", "trained_tokens", "adapter", "method",
              "hyperparameters", "error", "evaluation", "result_files", "metadata",
              "depends_on", "forgetting", "benchmarks", "fairness")  # fmt: skip
JOB_COLUMNS = (
    ("id", "id"),
    ("status", "status"),
    ("model", "model"),
    ("fine_tuned_model", "fine_tuned_model"),
    ("created", "created_at"),
)
_HP_FLAGS = ("n_epochs", "batch_size", "learning_rate", "learning_rate_multiplier")


def _load_body(text: str | None) -> dict[str, Any]:
    """`--body '{...}'` or `--body @spec.json`: any job field, flags override it."""
    if not text:
        return {}
    try:
        raw = Path(text[1:]).read_text() if text.startswith("@") else text
        body = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--body: {exc}") from None
    if not isinstance(body, dict):
        raise UsageError("--body must be a JSON object")
    return body


def job_body(args: argparse.Namespace) -> dict[str, Any]:
    body = _load_body(args.body)
    for name in ("model", "training_file", "validation_file", "suffix", "seed"):
        if (value := getattr(args, name)) is not None:
            body[name] = value
    if args.adapter:
        body["adapter"] = {**body.get("adapter", {}), "type": args.adapter}
    method = body.setdefault("method", {"type": args.method or "supervised"})
    if args.method:
        method["type"] = args.method
    hp = {k: v for k in _HP_FLAGS if (v := getattr(args, k)) is not None}
    if hp:
        block = method.setdefault(method["type"], {})
        block["hyperparameters"] = {**block.get("hyperparameters", {}), **hp}
    if args.metadata:
        if bad := [item for item in args.metadata if "=" not in item]:
            raise UsageError(f"--metadata takes KEY=VALUE, not {bad[0]!r}")
        body["metadata"] = dict(item.split("=", 1) for item in args.metadata)
    for required in ("model", "training_file"):
        if required not in body:
            raise UsageError(f"--{required.replace('_', '-')} is required (or in --body)")
    return body


def show_job(job: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        return print_json(job)
    brief = {**job, "method": (job.get("method") or {}).get("type")}  # hyperparameters follow
    if report := job.get("forgetting"):
        brief["forgetting"] = _forgetting_line(report)
    if fair := job.get("fairness"):
        brief["fairness"] = (
            ", ".join(
                f"{name.replace('_', ' ')} {_num(fair['base'][name])} → {_num(fair['tuned'][name])}"
                for name in ("accuracy_gap", "equal_opportunity_gap", "equalized_odds_gap")
            )
            + f" ({fair['split']}, groups {', '.join(fair['tuned']['groups'])})"
        )
    if found := job.get("benchmarks"):
        brief["benchmarks"] = "; ".join(
            f"{file_id} {task['kind']}: "
            + ", ".join(
                f"{k} "
                + " → ".join(f"{m[k]:.3f}" for m in (task.get("base"), task.get("tuned")) if m)
                for k in task.get("base") or task.get("tuned") or {}
                if not k.endswith("_stderr")
            )
            for file_id, task in found["tasks"].items()
        ) + _checkpoints_line(found)
    console.print(fields(brief, JOB_FIELDS, title=f"job {job['id']}"))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _checkpoints_line(found: dict[str, Any]) -> str:
    """evaluation.benchmark_checkpoints / select_best, appended to the benchmarks line."""
    text = ""
    if found.get("checkpoints"):
        text += f"; {len(found['checkpoints'])} checkpoints scored"
    if chosen := found.get("selected"):
        what = "the final model" if chosen["step"] is None else f"step {chosen['step']}"
        text += f"; selected {what} by {chosen['metric']} {chosen['value']:.3f}"
    return text


def _forgetting_line(report: dict[str, Any]) -> str:
    """The forgetting check in one line: general loss and accuracy before → after."""
    base, tuned, delta = report["base"], report["tuned"], report["delta"]
    return (
        f"general loss {base['loss']:.4f} → {tuned['loss']:.4f} ({delta['loss']:+.4f}), "
        f"token accuracy {base['token_accuracy']:.3f} → {tuned['token_accuracy']:.3f}"
        + (" — above the threshold: forgot" if report["exceeded"] else "")
    )


def create(client: ApiClient, args: argparse.Namespace) -> None:
    job = client.post("/fine_tuning/jobs", job_body(args))
    show_job(job, args)
    if args.watch:
        from cli.client.watch import watch_job

        raise SystemExit(watch_job(client, job["id"]))


def list_jobs(client: ApiClient, args: argparse.Namespace) -> None:
    page = client.get("/fine_tuning/jobs", limit=args.limit, after=args.after)
    show_list(page, JOB_COLUMNS, args.json)


def get(client: ApiClient, args: argparse.Namespace) -> None:
    show_job(client.get(f"/fine_tuning/jobs/{args.job_id}"), args)


def _action(name: str):
    def run(client: ApiClient, args: argparse.Namespace) -> None:
        show_job(client.post(f"/fine_tuning/jobs/{args.job_id}/{name}"), args)

    run.__doc__ = f"POST /fine_tuning/jobs/{{id}}/{name}"
    return run


def events(client: ApiClient, args: argparse.Namespace) -> None:
    page = client.get(f"/fine_tuning/jobs/{args.job_id}/events", limit=args.limit)
    if args.json:
        return print_json(page)
    for event in reversed(page["data"]):  # the server sends newest first
        console.print(f"{when(event['created_at'])}  {event['level']:<5}  {event['message']}")


def watch(client: ApiClient, args: argparse.Namespace) -> None:
    from cli.client.watch import watch_job

    raise SystemExit(watch_job(client, args.job_id, poll_interval=args.interval))


def _create_parser(jobs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = jobs.add_parser("create", parents=[common], help="start a fine-tuning job")
    p.add_argument("--model", help="base model, ft: model or job id")
    p.add_argument("--training-file", "-t", dest="training_file")
    p.add_argument("--validation-file", dest="validation_file")
    p.add_argument("--suffix")
    p.add_argument("--seed", type=int)
    p.add_argument("--adapter", help="lora, qlora, full, prompt_tuning, prefix_tuning, ia3")
    p.add_argument("--method", help="supervised (default), dpo, reward_model, ppo, grpo, ...")
    p.add_argument("--n-epochs", dest="n_epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--learning-rate", dest="learning_rate", type=float)
    p.add_argument("--learning-rate-multiplier", dest="learning_rate_multiplier", type=float)
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    p.add_argument("--body", help="the job as JSON, or @file.json; the flags above override it")
    p.add_argument("--watch", action="store_true", help="then watch it (as `jobs watch`)")
    p.set_defaults(call=create)


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    jobs = sub.add_parser("jobs", help="fine-tuning jobs: create, watch, ...").add_subparsers(
        dest="jobs_cmd", required=True
    )
    _create_parser(jobs, common)
    p = jobs.add_parser("list", parents=[common], help="list jobs, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--after", help="a job id: list the ones before it")
    p.set_defaults(call=list_jobs)
    for name, call, text in (
        ("get", get, "one job"),
        ("cancel", _action("cancel"), "cancel a job"),
        ("pause", _action("pause"), "pause a job at its current step"),
        ("resume", _action("resume"), "resume a paused job"),
    ):
        p = jobs.add_parser(name, parents=[common], help=text)
        p.add_argument("job_id")
        p.set_defaults(call=call)
    p = jobs.add_parser("events", parents=[common], help="a job's latest events, oldest first")
    p.add_argument("job_id")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(call=events)
    p = jobs.add_parser("watch", parents=[common], help="live progress bar until the job ends")
    p.add_argument("job_id")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    p.set_defaults(call=watch)
