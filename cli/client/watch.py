"""`lathe jobs watch`: a live bar (step/total, loss, valid loss, ETA) until the job ends.

Events come from the server's stream, `GET /v1/fine_tuning/jobs/{id}/events?stream=true`
(`text/event-stream`; each event `id: <event id>` and `data: <the event object>`; the server
closes it once the job is terminal), resumed with `Last-Event-ID` when the connection drops.
A server that answers that request with anything but an event stream gets polled instead:
the newest page of `/events` every interval, keeping the ones not seen yet.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.client.http import ApiClient, ApiError, sse_events
from cli.client.output import console, when

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STOPS = TERMINAL | {"paused"}  # a paused job waits for a resume: nothing more to watch
_FALLBACK_STATUSES = frozenset({400, 404, 405, 406, 422})  # the server has no such stream
_MAX_RECONNECTS = 20


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class JobView:
    """One bar for the job; other events are printed above it as they come."""

    def __init__(self, progress: Progress, job: dict[str, Any]):
        self.progress = progress
        self.task = progress.add_task(
            job["status"], total=None, loss="-", valid="-", eta=_eta(None)
        )
        self.first: tuple[int, int] | None = None  # (step, created_at) of the first metrics seen
        self.status = job["status"]
        self.transport = "?"

    def event(self, event: dict[str, Any]) -> None:
        data = event.get("data") or {}
        if event.get("type") == "metrics" and "step" in data:
            self._metrics(data, event["created_at"])
            if not console.is_terminal:  # no live bar in a log file: one line per step
                console.print(event["message"])
        else:
            self.progress.console.print(f"{when(event['created_at'])}  {event['message']}")

    def _metrics(self, data: dict[str, Any], created_at: int) -> None:
        step, total = int(data["step"]), data.get("total_steps")
        fields: dict[str, Any] = {"loss": _fmt(data.get("train_loss"))}
        if data.get("valid_loss") is not None:
            fields["valid"] = _fmt(data["valid_loss"])
        if self.first is None or step < self.first[0]:
            self.first = (step, created_at)
        s0, t0 = self.first
        if total and step > s0 and created_at > t0:  # server clocks: ETA survives a replay
            fields["eta"] = _eta((total - step) * (created_at - t0) / (step - s0))
        self.progress.update(self.task, completed=step, total=total, **fields)

    def set_status(self, job: dict[str, Any]) -> None:
        self.status = job["status"]
        self.progress.update(self.task, description=f"{self.status} ({self.transport})")


def _bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed:.0f}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("valid loss {task.fields[valid]}"),
        TextColumn("ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None  # not an event object (a keep-alive or end marker): nothing to show


def _stream(client: ApiClient, job_id: str, view: JobView) -> bool:
    """Follow the SSE stream until the job is terminal or paused; False if the server has
    none."""
    last_id: str | None = None
    failures = 0
    while failures <= _MAX_RECONNECTS:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            with client.stream(
                "GET",
                f"/fine_tuning/jobs/{job_id}/events",
                params={"stream": "true"},
                headers=headers,
                timeout=httpx.Timeout(10.0, read=300.0),
            ) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    return False
                view.transport = "live"
                for sse in sse_events(response.iter_lines()):
                    last_id = sse.id or last_id
                    failures = 0
                    if sse.data == "[DONE]":  # the job finished and every event was sent
                        break
                    if not (isinstance(event := _decode(sse.data), dict) and "message" in event):
                        continue
                    view.event(event)
                    if event.get("type") != "metrics":  # a status change comes with a message
                        view.set_status(job := client.get(f"/fine_tuning/jobs/{job_id}"))
                        if job["status"] == "paused":  # the stream stays open for a resume
                            return True
        except ApiError as exc:
            if exc.status in _FALLBACK_STATUSES and last_id is None:
                return False
            if exc.status is not None:
                raise
            failures += 1  # the connection dropped: reconnect where it left off
        except httpx.HTTPError:
            failures += 1
        view.set_status(job := client.get(f"/fine_tuning/jobs/{job_id}"))
        if job["status"] in STOPS:
            return True
        time.sleep(min(failures, 5))
    raise ApiError(f"the event stream of {job_id} kept dropping ({_MAX_RECONNECTS} reconnects)")


def _new_events(client: ApiClient, job_id: str, seen: set[str]) -> list[dict[str, Any]]:
    """Events not seen yet, oldest first (pages come newest first)."""
    fresh: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.get(f"/fine_tuning/jobs/{job_id}/events", limit=100, after=after)
        new = [e for e in page["data"] if e["id"] not in seen]
        fresh.extend(new)
        if len(new) < len(page["data"]) or not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    seen.update(e["id"] for e in fresh)
    return fresh[::-1]


def _poll(client: ApiClient, job_id: str, view: JobView, interval: float) -> None:
    view.transport = "polling"
    seen: set[str] = set()
    while True:
        job = client.get(f"/fine_tuning/jobs/{job_id}")  # before the events: none are missed
        for event in _new_events(client, job_id, seen):
            view.event(event)
        view.set_status(job)
        if job["status"] in STOPS:
            return
        time.sleep(interval)


def watch_job(client: ApiClient, job_id: str, poll_interval: float = 1.0) -> int:
    """Show the job's progress until it ends or pauses; the exit status is 0 only if it
    succeeded. A job paused already is shown as it stands (a stream would wait for a resume)."""
    job = client.get(f"/fine_tuning/jobs/{job_id}")
    with _bar() as progress:
        view = JobView(progress, job)
        view.set_status(job)
        if job["status"] == "paused" or not _stream(client, job_id, view):
            _poll(client, job_id, view, poll_interval)
        job = client.get(f"/fine_tuning/jobs/{job_id}")
        view.set_status(job)
    if job["status"] == "succeeded":
        console.print(f"[green]succeeded[/green]: {job.get('fine_tuned_model')}")
        return 0
    if job["status"] == "paused":
        console.print(f"[yellow]paused[/yellow]: `lathe jobs resume {job_id}` continues it")
        return 1
    error = job.get("error") or {}
    console.print(f"[red]{job['status']}[/red]: {error.get('message', '')}".rstrip(": "))
    return 1
