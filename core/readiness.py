"""Can this process do its work: are the database, the broker and the object store reachable?

`/health` says only that the API process is alive (it must answer under any load, without a
database connection). Readiness is the other question, asked by a load balancer or a compose
healthcheck: `GET /ready` on the API and `lathe ready` in a worker's container run these three
checks, each with a deadline, concurrently, so a hung dependency costs `timeout_s`, not a
TCP timeout. Answers name the component and the kind of failure, never an endpoint or a
credential (the route is unauthenticated).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.settings import Settings

OK = "ok"


def _probes(settings: Settings, timeout_s: float) -> dict[str, Callable[[], None]]:
    """One network call per component. Imports and clients are made here, before the clock
    starts, so a slow start-up (a busy host importing boto3) is not taken for an outage."""
    from sqlalchemy import text

    from core.persistence.db import session_scope
    from core.storage import get_storage

    def database() -> None:
        with session_scope(settings.resolved_database_url) as session:
            session.execute(text("SELECT 1"))

    broker_url = settings.resolved_broker_url
    client = None
    if broker_url.startswith(("redis://", "rediss://")):  # the embedded broker is a folder
        import redis

        client = redis.Redis.from_url(
            broker_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def broker() -> None:
        if client is not None:
            client.ping()

    storage = get_storage(settings)

    def objects() -> None:
        storage.list_keys("lathe-readiness-probe")  # a missing bucket raises

    return {"database": database, "broker": broker, "storage": objects}


def check(settings: Settings, timeout_s: float = 3.0) -> dict[str, str]:
    """Component → "ok", or why not ("timed out", or the exception's class)."""
    probes = _probes(settings, timeout_s)
    results: dict[str, str] = {}

    def run(name: str, probe: Callable[[], None]) -> None:
        try:
            probe()
            results[name] = OK
        except Exception as exc:  # any failure means not ready; say which kind
            results[name] = f"unavailable ({type(exc).__name__})"

    threads = [
        threading.Thread(target=run, args=item, daemon=True, name=f"ready-{item[0]}")
        for item in probes.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    return {name: results.get(name, "timed out") for name in probes}


def ready(results: dict[str, str]) -> bool:
    return all(value == OK for value in results.values())
