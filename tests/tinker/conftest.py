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
    proc = Proc([sys.executable, "-m", "worker.tinker_trainer"], stack.env, log)
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


@pytest.fixture(scope="session")
def connect(tinker_url: str):
    """A `tinker.ServiceClient` for a Lathe key, given as `tml-<key>` as documented."""
    import tinker

    return lambda key: tinker.ServiceClient(base_url=tinker_url, api_key="tml-" + key)


@pytest.fixture(scope="session")
def service(connect, stack: Stack):  # noqa: F811
    return connect(stack.key)
