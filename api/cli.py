"""The `lathe` command: serve, worker, migrate, keys create."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import subprocess
import sys
from pathlib import Path

from core.settings import Settings, get_settings


def _embedded_key(settings: Settings) -> str:
    """The embedded default prints a working key at every start: it is kept (0600) in data_dir."""
    from core.auth import authenticate, create_api_key
    from core.errors import Unauthorized
    from core.persistence.db import session_scope

    path = settings.data_dir / "api_key"
    with session_scope(settings.resolved_database_url) as session:
        if path.exists():
            try:
                authenticate(session, path.read_text().strip())
                return path.read_text().strip()
            except Unauthorized:
                pass
        key = create_api_key(session, settings.bootstrap_org, "embedded default")
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _start_worker_process() -> subprocess.Popen:
    """The embedded worker, dying with `lathe serve` however it dies (PR_SET_PDEATHSIG: uvicorn
    re-raises SIGTERM after shutdown, so atexit never runs then)."""
    from core.process import die_with_parent

    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=os.environ.copy(),
        preexec_fn=die_with_parent(),
    )


def _keep_worker_running() -> None:
    """Start the embedded worker and start it again whenever it dies (after a pause that
    grows while it keeps dying at once), until `lathe serve` exits."""
    import threading
    import time

    exiting = threading.Event()
    state = {"proc": _start_worker_process()}

    def watch() -> None:
        delay = 1.0
        while True:
            started = time.monotonic()
            code = state["proc"].wait()
            if exiting.is_set():
                return
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            logging.getLogger("lathe").error(
                "embedded worker exited with %s; restarting it in %.0f s", code, delay
            )
            if exiting.wait(delay):
                return
            state["proc"] = _start_worker_process()

    def stop() -> None:  # a normal exit
        exiting.set()
        if state["proc"].poll() is None:
            state["proc"].terminate()

    threading.Thread(target=watch, name="embedded-worker", daemon=True).start()
    atexit.register(stop)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from core.persistence.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded_db = settings.resolved_database_url.startswith("sqlite")
    if embedded_db:
        upgrade(settings.resolved_database_url)  # production runs `lathe migrate` as its own step
    if settings.runs_embedded_worker and not args.no_worker:
        _keep_worker_running()
    host, port = args.host or settings.host, args.port or settings.port
    print(f"Lathe API: http://{host}:{port}/v1", flush=True)
    if embedded_db:
        print(f"API key:   {_embedded_key(settings)}", flush=True)
    else:
        print("Create an API key with: lathe keys create --org <name>", flush=True)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
    )


def worker(args: argparse.Namespace) -> None:
    from worker.celery_app import app

    settings = get_settings()
    app.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log_level,
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--queues",
            settings.queue_name,
            "--hostname",
            args.name or "lathe@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def migrate(args: argparse.Namespace) -> None:
    from core.persistence.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url, args.revision)
    print(f"database at {args.revision}")


def keys_create(args: argparse.Namespace) -> None:
    from core.auth import create_api_key
    from core.persistence.db import session_scope

    with session_scope(get_settings().resolved_database_url) as session:
        key = create_api_key(session, args.org, args.name)
    print(key)


def build_tiny(args: argparse.Namespace) -> None:
    from core.tiny_model import build_tiny_llama

    print(build_tiny_llama(Path(args.path)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lathe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the API (and, embedded, a worker beside it)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-worker", action="store_true", help="never start a worker alongside")
    p.set_defaults(func=serve)
    p = sub.add_parser("worker", help="run a training worker (one job at a time)")
    p.add_argument("--name", help="Celery node name, default lathe@<host>")
    p.set_defaults(func=worker)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=migrate)
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_cmd", required=True)
    p = keys.add_parser("create", help="create an API key (and its organization)")
    p.add_argument("--org", required=True)
    p.add_argument("--name")
    p.set_defaults(func=keys_create)
    p = sub.add_parser("build-tiny-model", help="write the builtin tiny Llama to a directory")
    p.add_argument("path")
    p.set_defaults(func=build_tiny)
    args = parser.parse_args(argv)
    logging.basicConfig(level=get_settings().log_level)
    args.func(args)


if __name__ == "__main__":
    main()
