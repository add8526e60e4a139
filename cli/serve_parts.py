"""What `lathe serve` needs to know about its parts: where their logs go, and whether the
inference service and the embedded worker answer yet (the banner waits for both)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import httpx

from core.settings import Settings


def log_path(settings: Settings) -> Path | None:
    """The file `lathe serve` logs to, or None for the terminal. The embedded default logs to a
    file so that the terminal shows the banner alone (its worker and inference service print
    dozens of start-up lines); a deployment (Postgres) keeps the terminal, where containers'
    logs are collected."""
    if settings.log.file == "-":
        return None
    if settings.log.file:
        return Path(settings.log.file)
    if settings.resolved_database_url.startswith("sqlite"):
        return settings.data_dir / "lathe.log"
    return None


def redirect_output(path: Path) -> TextIO:
    """Point this process's stdout and stderr (file descriptors 1 and 2, so every child it
    starts inherits them) at `path`, appended; return a stream on the original stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return terminal


def say_why_it_stopped(path: Path, terminal: TextIO, started: bool, lines: int = 15) -> None:
    """On the way out: the terminal holds only the banner, so a server that stops (a port in
    use, a bad setting) says so there, with the log's last lines."""
    tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
    what = "Lathe stopped" if started else "Lathe did not start"
    print(f"{what}; the end of {path}:", *tail, sep="\n", file=terminal, flush=True)


def inference_answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(f"{url.rstrip('/')}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def file_exists(path: Path) -> Callable[[], bool]:
    return path.exists


def mark_ready_on_worker_start(path: Path) -> None:
    """In the embedded worker: create `path` once Celery consumes its queues (its `worker_ready`
    signal), which is when a job sent now would start."""
    from celery.signals import worker_ready

    path.unlink(missing_ok=True)

    @worker_ready.connect(weak=False)
    def _ready(**_: object) -> None:
        path.write_text(str(os.getpid()))
