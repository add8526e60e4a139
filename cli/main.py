"""The `lathe` command: serve, worker, inference, tinker-trainer, migrate, keys create|list|revoke,
orgs list|delete; and the client commands."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import subprocess
import sys
from pathlib import Path

from cli import serve_parts
from cli.banner import announce_when_ready, port_accepts
from cli.client import add_commands as add_client_commands
from core.logging_setup import configure_logging
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
        key = create_api_key(session, settings.server.bootstrap_org, "embedded default")
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _worker_ready_file(settings: Settings) -> Path:
    return settings.data_dir / "embedded-worker.ready"


def _start_worker_process() -> subprocess.Popen:
    """The embedded worker, dying with `lathe serve` however it dies (PR_SET_PDEATHSIG: uvicorn
    re-raises SIGTERM after shutdown, so atexit never runs then)."""
    from core.process import die_with_parent

    ready_file = _worker_ready_file(get_settings())
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--ready-file", str(ready_file)],
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


def _start_inference_process(settings: Settings) -> None:
    """Embedded mode: `lathe inference` beside the API on a free local port, restarted if it
    dies (generation never runs in the API process). The API finds it by LATHE_INFERENCE_URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["LATHE_INFERENCE_URL"] = f"http://127.0.0.1:{port}"
    get_settings.cache_clear()
    _supervise("lathe inference", ["inference", "--port", str(port)])


def _supervise(name: str, args: list[str]) -> None:
    """Run `lathe ARGS` beside the server, started again whenever it exits, dying with it."""
    import threading
    import time

    from core.process import die_with_parent

    command = [sys.executable, "-m", "cli.main", *args]

    def supervise() -> None:
        while True:
            proc = subprocess.Popen(
                command,
                env=os.environ.copy(),
                preexec_fn=die_with_parent(),
            )
            atexit.register(lambda p=proc: p.poll() is None and p.terminate())
            code = proc.wait()
            logging.getLogger("lathe").warning("%s exited (%s); restarting", name, code)
            time.sleep(1)

    # The thread lives as long as the server: PR_SET_PDEATHSIG follows the spawning thread.
    threading.Thread(target=supervise, name=f"{name} supervisor", daemon=True).start()


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from core.persistence.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = serve_parts.log_path(settings)
    terminal = serve_parts.redirect_output(log_file) if log_file else sys.stdout
    host, port = args.host or settings.server.host, args.port or settings.server.port
    ready = [port_accepts(host, port)]
    embedded_db = settings.resolved_database_url.startswith("sqlite")
    if embedded_db:
        upgrade(settings.resolved_database_url)  # production runs `lathe migrate` as its own step
    if settings.inference.url is None:  # first: the worker runs batches against it too
        _start_inference_process(settings)
    if settings.runs_embedded_worker and not args.no_worker:
        _worker_ready_file(settings).unlink(missing_ok=True)
        ready.append(serve_parts.file_exists(_worker_ready_file(settings)))
        _keep_worker_running()
        if settings.tinker.embedded_trainer:  # the Tinker API's trainer (core.tinker)
            _supervise("lathe tinker-trainer", ["tinker-trainer"])
    ready.append(serve_parts.inference_answers(get_settings().inference.url))
    banner = [f"Lathe API: http://{host}:{port}/v1", f"API docs:  http://{host}:{port}/docs"]
    if embedded_db:
        banner.append(f"API key:   {_embedded_key(settings)}")
        banner.append(f"Key file:  {settings.data_dir / 'api_key'}")
    else:
        banner.append("Create an API key with: lathe keys create --org <name>")
    if log_file:
        banner.append(f"Logs:      {log_file}")
    shown = announce_when_ready(banner, ready, terminal)  # once API, worker, inference answer
    try:
        uvicorn.run(
            "api.main:create_app",
            factory=True,
            host=host,
            port=port,
            log_level=settings.log.level.lower(),
            log_config=None if settings.log.format == "json" else uvicorn.config.LOGGING_CONFIG,
            # forwarded headers name the client only when an operator-named proxy sent them
            proxy_headers=bool(settings.security.trusted_proxies),
            forwarded_allow_ips=settings.security.trusted_proxies or None,
        )
    finally:
        if log_file:
            serve_parts.say_why_it_stopped(log_file, terminal, started=shown.is_set())


def tinker_trainer(args: argparse.Namespace) -> None:
    from worker.tinker_trainer import main

    main(["--device", args.device] if args.device else [])


def worker(args: argparse.Namespace) -> None:
    from core.jobs.placement import worker_gpus, worker_queues
    from worker import observability as worker_observability

    if args.gpus is not None:  # the job's training processes read it too
        os.environ["LATHE_WORKER_GPUS"] = str(args.gpus)
        get_settings.cache_clear()
    from worker.celery_app import app

    settings = get_settings()
    if args.ready_file:
        serve_parts.mark_ready_on_worker_start(Path(args.ready_file))
    worker_observability.install(settings)  # job_id/org_id on log lines, metrics exporter
    if settings.jobs.warm_training:
        from core.runs import forkserver

        forkserver.warm_up()  # the training stack imported once, before the first job
    app.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log.level,
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--queues",
            ",".join(worker_queues(settings, worker_gpus(settings))),
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
        "serving.app:create_inference_app",
        factory=True,
        host=args.host or "127.0.0.1",
        port=args.port or settings.inference.port,
        log_level=settings.log.level.lower(),
    )


def migrate(args: argparse.Namespace) -> None:
    from core.persistence.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url, args.revision)
    print(f"database at {args.revision}")


def admin_database() -> str:
    """The database URL for the operator commands (keys, orgs), its tables in place. The
    embedded SQLite is migrated here, as `lathe serve` does at start; another database is the
    operator's to migrate, so a missing schema is a one-line error naming `lathe migrate`
    (it was SQLAlchemy's traceback: `no such table: organizations`)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from core.persistence.db import get_engine
    from core.persistence.migrate import upgrade

    settings = get_settings()
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(url)
        return url
    try:
        migrated = inspect(get_engine(url)).has_table("organizations")
    except OperationalError as exc:
        sys.exit(
            f"error: cannot reach the database ({type(exc.orig).__name__}); "
            "check LATHE_DATABASE_URL"
        )
    if not migrated:
        sys.exit("error: the database has no Lathe tables yet: run `lathe migrate` first")
    return url


def keys_create(args: argparse.Namespace) -> None:
    from core.auth import create_api_key
    from core.persistence.db import session_scope

    with session_scope(admin_database()) as session:
        key = create_api_key(session, args.org, args.name)
    print(key)


def _when(value) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def keys_list(args: argparse.Namespace) -> None:
    from core.admin import list_keys
    from core.persistence.db import session_scope

    with session_scope(admin_database()) as session:
        for k in list_keys(session, args.org):
            state = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
            print(f"{k.id}\t{k.organization}\t{k.display}\t{k.name or '-'}\t{state}")


def keys_revoke(args: argparse.Namespace) -> None:
    """Effective at once for API processes that have not looked the key up in the last
    LATHE_AUTH_CACHE_TTL_S seconds, and for all of them after that."""
    from core.admin import revoke_key
    from core.persistence.db import session_scope

    with session_scope(admin_database()) as session:
        k = revoke_key(session, args.key_id)
    print(f"{k.id}\trevoked {_when(k.revoked_at)}")


def orgs_list(args: argparse.Namespace) -> None:
    from core.admin import list_orgs
    from core.persistence.db import session_scope

    with session_scope(admin_database()) as session:
        for o in list_orgs(session):
            print(f"{o.id}\t{o.name}\t{o.active_keys} active keys\t{_when(o.created_at)}")


def orgs_delete(args: argparse.Namespace) -> None:
    from core.admin import delete_org
    from core.persistence.db import session_scope
    from core.storage import get_storage

    settings = get_settings()
    with session_scope(admin_database()) as session:
        keys = delete_org(session, get_storage(settings), args.name)
    print(f"deleted {args.name} ({len(keys)} keys revoked with it)")


def ready(args: argparse.Namespace) -> None:
    """Exit 0 if the database, broker and object store answer (core.readiness), else 1: a
    container healthcheck for workers, which have no HTTP port to ask."""
    import json

    from core import readiness

    checks = readiness.check(get_settings(), timeout_s=args.timeout)
    print(json.dumps(checks))
    raise SystemExit(0 if readiness.ready(checks) else 1)


def build_tiny(args: argparse.Namespace) -> None:
    from core.tiny_model import build_tiny_llama

    print(build_tiny_llama(Path(args.path)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lathe", description=__doc__)
    parser.add_argument(
        "--json", action="store_true", help="client commands: print the server's JSON"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the API (and, embedded, a worker beside it)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-worker", action="store_true", help="never start a worker alongside")
    p.set_defaults(func=serve)
    p = sub.add_parser("worker", help="run a training worker (one job at a time)")
    p.add_argument("--name", help="Celery node name, default lathe@<host>")
    p.add_argument(
        "--gpus",
        type=int,
        help="devices one job trains on here (default: the CUDA devices seen, else 1); on a "
        "CPU worker N training processes (gloo), for testing. Consumes that size's queue.",
    )
    p.add_argument("--ready-file", help=argparse.SUPPRESS)  # `lathe serve`'s embedded worker
    p.set_defaults(func=worker)
    p = sub.add_parser("inference", help="run the inference service (engine, vLLM servers)")
    p.add_argument("--host", help="default 127.0.0.1")
    p.add_argument("--port", type=int, help="default LATHE_INFERENCE_PORT")
    p.set_defaults(func=inference)
    p = sub.add_parser("tinker-trainer", help="run a Tinker trainer (holds training clients)")
    p.add_argument("--device", help="torch device (default: cuda if seen, else cpu)")
    p.set_defaults(func=tinker_trainer)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=migrate)
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_cmd", required=True)
    p = keys.add_parser("create", help="create an API key (and its organization)")
    p.add_argument("--org", required=True)
    p.add_argument("--name")
    p.set_defaults(func=keys_create)
    p = keys.add_parser("list", help="list API keys (never the keys themselves)")
    p.add_argument("--org", help="only this organization's")
    p.set_defaults(func=keys_list)
    p = keys.add_parser("revoke", help="revoke an API key by its id (key_…)")
    p.add_argument("key_id")
    p.set_defaults(func=keys_revoke)
    orgs = sub.add_parser("orgs", help="organizations").add_subparsers(
        dest="orgs_cmd", required=True
    )
    p = orgs.add_parser("list", help="list organizations")
    p.set_defaults(func=orgs_list)
    p = orgs.add_parser("delete", help="delete an organization and everything it owns")
    p.add_argument("name")
    p.set_defaults(func=orgs_delete)
    p = sub.add_parser("ready", help="check the database, broker and storage (exit 0: all answer)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per check")
    p.set_defaults(func=ready)
    p = sub.add_parser("build-tiny-model", help="write the builtin tiny Llama to a directory")
    p.add_argument("path")
    p.set_defaults(func=build_tiny)
    add_client_commands(sub)  # files, jobs, models, chat, login: cli/client
    args = parser.parse_args(argv)
    if args.json and not hasattr(args, "call"):  # refused, not ignored
        parser.error("--json applies to the client commands (files, jobs, models, chat)")
    configure_logging(get_settings())
    from core.errors import LatheError

    try:
        args.func(args)
    except LatheError as exc:  # e.g. no such key: the message, not a traceback
        sys.exit(f"lathe: {exc.message}")


if __name__ == "__main__":
    main()
