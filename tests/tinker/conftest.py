"""The production stack (the session's one `stack`, tests/conftest.py: uvicorn API, Celery
worker, inference service on Postgres + Redis + S3) plus one Tinker trainer process, driven with
the real `tinker` SDK."""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.utils.processes import Proc, free_port, lathe, run_lathe, wait_http, wait_log
from tests.utils.stack import Stack

COOKBOOK_BASE = "meta-llama/Llama-3.2-1B"
"""A name the tinker-cookbook's model table knows (renderer role_colon), served here by the
builtin tiny Llama: a builtin base under another name is built as tiny-llama."""


@pytest.fixture(scope="session")
def trainer(stack: Stack, tmp_path_factory) -> Iterator[Proc]:  # noqa: F811
    log = tmp_path_factory.mktemp("tinker") / "trainer.log"
    env = {**stack.env, "LATHE_TINKER_TRAINER_CAPACITY": "64"}  # every test's clients
    with tinker_trainer(env, log) as proc:
        yield proc


@contextlib.contextmanager
def tinker_trainer(env: dict[str, str], log: Path) -> Iterator[Proc]:
    """A `python -m worker.tinker_trainer` on `env`'s deployment, once it says it is ready."""
    proc = Proc([sys.executable, "-m", "worker.tinker_trainer"], env, log)
    try:
        wait_log(proc, "tinker trainer ready")
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def tinker_url(stack: Stack, trainer: Proc) -> str:  # noqa: F811
    return stack.url.removesuffix("/v1")


@pytest.fixture(scope="session")
def org_key(stack: Stack) -> Callable[[], str]:  # noqa: F811
    """A Lathe key of a fresh organization (live training clients are bounded per org)."""
    return lambda: run_lathe(
        stack.env, "keys", "create", "--org", f"tk-{secrets.token_hex(3)}"
    ).strip()


@pytest.fixture(scope="module")
def connect(tinker_url: str):
    """`tinker.ServiceClient`s for Lathe keys, given unchanged as documented; closed after the
    module (which finishes their sessions and releases their training clients)."""
    import tinker

    made = []

    def make(key: str):
        made.append(tinker.ServiceClient(base_url=tinker_url, api_key=key))
        return made[-1]

    yield make
    for client in made:
        client.close("success").result()


@pytest.fixture(scope="module")
def service(connect, stack: Stack):  # noqa: F811
    return connect(stack.key)


@dataclass
class AliasLathe:
    """A second API on the session's database whose settings add COOKBOOK_BASE; trainers for
    it are started by the tests (`start_trainer`), which may kill them."""

    url: str
    env: dict[str, str]
    root: Path

    def start_trainer(self, name: str, **env: str) -> Proc:
        """A trainer serving COOKBOOK_BASE only: the session's trainer does not know that base
        and this one claims nothing else (core.tinker.trainer claims by base)."""
        only = {"LATHE_BASE_MODELS": json.dumps({COOKBOOK_BASE: {"source": "builtin"}})}
        proc = Proc(
            lathe("tinker-trainer", "--device", "cpu"),
            {**self.env, **only, **env},
            self.root / f"{name}.log",
        )
        wait_log(proc, "tinker trainer ready")
        return proc


@pytest.fixture(scope="session")
def alias_lathe(stack: Stack, model_cache: Path, tmp_path_factory) -> Iterator[AliasLathe]:  # noqa: F811
    from core.tiny_model import ensure_tiny_llama

    ensure_tiny_llama(model_cache / COOKBOOK_BASE)  # its tokenizer is served before any client
    bases = {**json.loads(stack.env["LATHE_BASE_MODELS"]), COOKBOOK_BASE: {"source": "builtin"}}
    env = {**stack.env, "LATHE_BASE_MODELS": json.dumps(bases)}
    root, port = tmp_path_factory.mktemp("alias-lathe"), free_port()
    api = Proc(lathe("serve", "--port", str(port)), env, root / "api.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", api)
        yield AliasLathe(f"http://127.0.0.1:{port}", env, root)
    finally:
        api.stop()
