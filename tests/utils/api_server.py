"""A real `lathe serve` (uvicorn) of a test's own, with the settings the test needs: embedded
(SQLite, local objects) by default, or on a Postgres database given as `database_url`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil

from tests.utils.processes import Proc, base_env, free_port, lathe, run_lathe, wait_http

ADMIN_KEY = "sk-admin-test-operator"


@dataclass
class ApiServer:
    port: int
    key: str
    env: dict[str, str]
    proc: Proc

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/v1"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def client(self, key: str | None = None, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(key), timeout=60, **kw)

    def new_key(self, org: str) -> str:
        return run_lathe(self.env, "keys", "create", "--org", org).strip()

    def as_org(self, org: str) -> ApiServer:
        """This server seen by a new organization of its own (a key made through the admin
        API, no process started): tests sharing one server keep out of each other's objects,
        quotas and listings."""
        with self.client(ADMIN_KEY) as admin:
            created = admin.post("/admin/keys", json={"org": org, "name": "tests"})
        created.raise_for_status()
        return replace(self, key=created.json()["key"])

    @property
    def data_dir(self) -> Path:
        return Path(self.env["LATHE_DATA_DIR"])

    def rss(self) -> int:
        return psutil.Process(self.proc.popen.pid).memory_info().rss


@contextmanager
def api_server(
    root: Path,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[ApiServer]:
    """`settings` are LATHE_* variables without the prefix, e.g. requests_per_minute="5";
    `extra_env` other variables of the server's environment."""
    port = free_port()
    env = base_env(
        LATHE_DATA_DIR=str(root / "data"),
        LATHE_EMBEDDED_WORKER="false",
        LATHE_ADMIN_KEY=ADMIN_KEY,
        **{f"LATHE_{k.upper()}": v for k, v in settings.items()},
        **(extra_env or {}),
    )
    if database_url:
        env["LATHE_DATABASE_URL"] = database_url
        run_lathe(env, "migrate")
    proc = Proc(lathe("serve", "--no-worker", "--port", str(port)), env, root / "api.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        key_file = root / "data" / "api_key"
        if database_url:
            key = run_lathe(env, "keys", "create", "--org", "acme").strip()
        else:
            key = _wait_key(key_file, proc)
        yield ApiServer(port, key, env, proc)
    finally:
        proc.stop()


def _wait_key(path: Path, proc: Proc) -> str:
    """The embedded key is written just before uvicorn starts, so it exists once /health is up."""
    if not path.exists():
        raise RuntimeError(f"no embedded key:\n{proc.tail()}")
    return path.read_text().strip()
