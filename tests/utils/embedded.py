"""The embedded default as tests run it: one `lathe serve` (SQLite, local objects, its worker
beside it), started once per session and shared by the CLI, dashboard and generated-SDK tests,
each as an organization of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.utils.processes import Proc, base_env, free_port, lathe, run_lathe, wait_http, wait_log


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    key: str  # the embedded first key: the bootstrap organization's ("default")
    env: dict[str, str]
    proc: Proc

    def org_key(self, org: str) -> str:
        """A key of a new organization, made as an operator does (`lathe keys create`)."""
        return run_lathe(self.env, "keys", "create", "--org", org).strip()


@contextmanager
def embedded_serve(root: Path, model_cache: Path) -> Iterator[Served]:
    """`lathe serve` with its defaults but the session's model cache; yields once the worker
    is ready and the banner (printed once the port accepts connections) names the key."""
    port = free_port()
    env = base_env(LATHE_DATA_DIR=str(root / ".lathe"), LATHE_MODEL_CACHE_DIR=str(model_cache))
    proc = Proc(lathe("serve", "--port", str(port)), env, root / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        wait_log(proc, "ready")  # the worker started alongside
        wait_log(proc, "API key:")
        key = re.search(r"API key:\s+(tml-lathe-\S+)", proc.log.read_text()).group(1)
        yield Served(f"http://127.0.0.1:{port}", key, env, proc)
    finally:
        proc.stop()
