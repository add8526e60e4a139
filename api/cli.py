"""The `lathe` command: serve, worker, inference, migrate, keys create."""

from __future__ import annotations

import argparse
import atexit
import contextlib
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


def _die_with_parent() -> None:
    """Runs in the worker child: on Linux the kernel sends it SIGTERM when `lathe serve` dies,
    however it dies (uvicorn re-raises SIGTERM after shutdown, so atexit never runs then)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _start_worker_process() -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=os.environ.copy(),
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    atexit.register(lambda: proc.poll() is None and proc.terminate())  # a normal exit
    return proc


def _start_inference_process(settings: Settings) -> None:
    """Embedded mode: `lathe inference` beside the API on a free local port, restarted if it
    dies (generation never runs in the API process). The API finds it by LATHE_INFERENCE_URL."""
    import socket
    import threading
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["LATHE_INFERENCE_URL"] = f"http://127.0.0.1:{port}"
    get_settings.cache_clear()
    command = [sys.executable, "-m", "api.cli", "inference", "--port", str(port)]

    def supervise() -> None:
        while True:
            proc = subprocess.Popen(
                command,
                env=os.environ.copy(),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            atexit.register(lambda p=proc: p.poll() is None and p.terminate())
            code = proc.wait()
            logging.getLogger("lathe").warning("lathe inference exited (%s); restarting", code)
            time.sleep(1)

    # The thread lives as long as the server: PR_SET_PDEATHSIG follows the spawning thread.
    threading.Thread(target=supervise, name="inference-supervisor", daemon=True).start()


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from core.persistence.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded_db = settings.resolved_database_url.startswith("sqlite")
    if embedded_db:
        upgrade(settings.resolved_database_url)  # production runs `lathe migrate` as its own step
    if settings.runs_embedded_worker and not args.no_worker:
        _start_worker_process()
    if settings.inference_url is None:
        _start_inference_process(settings)
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


def inference(args: argparse.Namespace) -> None:
    """The inference service: the in-process engine and any vLLM servers, behind an internal
    HTTP API that `lathe serve` calls (its own compose service in production)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.inference_app:create_inference_app",
        factory=True,
        host=args.host or "127.0.0.1",
        port=args.port or settings.inference_port,
        log_level=settings.log_level.lower(),
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
    p = sub.add_parser("inference", help="run the inference service (engine, vLLM servers)")
    p.add_argument("--host", help="default 127.0.0.1")
    p.add_argument("--port", type=int, help="default LATHE_INFERENCE_PORT")
    p.set_defaults(func=inference)
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
