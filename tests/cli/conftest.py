"""The session's embedded `lathe serve` (SQLite, local objects, a worker beside it; `served` in
tests/conftest.py) and a way to run the `lathe` client commands against it as a user would: a
separate process, env-configured."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.utils.embedded import Served
from tests.utils.processes import ROOT, Proc, base_env, lathe


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
def server(served: Served, tmp_path_factory) -> Server:
    """The session's embedded `lathe serve` as its first user: the bootstrap key, a folder of
    the user's own."""
    return Server(served.url, served.key, tmp_path_factory.mktemp("cli"), served.proc)
