"""The production stack (tests/api's `stack`: uvicorn API, Celery worker, inference service on
Postgres + Redis + S3) plus one Tinker trainer process, driven with the real `tinker` SDK."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator

import pytest

from tests.api.conftest import stack  # noqa: F401  (the session's one stack)
from tests.utils.processes import Proc, run_lathe, wait_log
from tests.utils.stack import Stack


@pytest.fixture(scope="session")
def trainer(stack: Stack, tmp_path_factory) -> Iterator[Proc]:  # noqa: F811
    log = tmp_path_factory.mktemp("tinker") / "trainer.log"
    env = {**stack.env, "LATHE_TINKER_TRAINER_CAPACITY": "64"}  # every test's clients
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
    """`tinker.ServiceClient`s for Lathe keys, given as `tml-<key>` as documented; closed
    after the module (which finishes their sessions and releases their training clients)."""
    import tinker

    made = []

    def make(key: str):
        made.append(tinker.ServiceClient(base_url=tinker_url, api_key="tml-" + key))
        return made[-1]

    yield make
    for client in made:
        client.close("success").result()


@pytest.fixture(scope="module")
def service(connect, stack: Stack):  # noqa: F811
    return connect(stack.key)
