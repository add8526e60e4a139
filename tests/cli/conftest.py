"""A real embedded `lathe serve` (SQLite, local objects, a worker beside it) and a way to run
the `lathe` client commands against it as a user would: a separate process, env-configured."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.utils.processes import ROOT, Proc, base_env, free_port, lathe, wait_http, wait_log


@dataclass
class Server:
    base_url: str
    key: str
    root: Path
    proc: Proc

    def env(self, **extra: str) -> dict[str, str]:
        """A user's shell: the server and key in LATHE_*, a private config dir, 200 columns."""
        env = base_env(
            LATHE_BASE_URL=self.base_url,
            LATHE_API_KEY=self.key,
            XDG_CONFIG_HOME=str(self.root / "config"),
            COLUMNS="200",
        )
        env.update(extra)
        return env


def cli(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lathe(*args), env=env, cwd=ROOT, capture_output=True, text=True, input=input,
        timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli")
    port = free_port()
    env = base_env(LATHE_DATA_DIR=str(root / ".lathe"), LATHE_MODEL_CACHE_DIR=str(model_cache))
    proc = Proc(lathe("serve", "--port", str(port)), env, root / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        wait_log(proc, "ready")  # the worker started alongside
        wait_log(proc, "API key:")  # the banner comes once the port accepts connections
        key = re.search(r"API key:\s+(tml-lathe-\S+)", proc.log.read_text()).group(1)
        yield Server(f"http://127.0.0.1:{port}", key, root, proc)
    finally:
        proc.stop()
