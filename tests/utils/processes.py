"""Start Lathe's real processes (uvicorn API, Celery worker) for tests, and stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose output goes to a log file, shown when a test needs it."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait()
        self._out.close()


def lathe(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def run_lathe(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        lathe(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"lathe {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def wait_http(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not up after {timeout}s:\n{proc.tail()}")


def wait_log(proc: Proc, needle: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.log.read_text(errors="replace"):
            return
        if proc.popen.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.tail()}")
        time.sleep(0.25)
    raise TimeoutError(f"{needle!r} not seen after {timeout}s:\n{proc.tail()}")


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATHE_")}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.update(LATHE_LOG_FILE="-")  # the tests read each server's log from its own stdout
    # one Tinker trainer per `lathe serve` would import torch in every embedded server; the
    # tests that use it start it (tests/tinker, tests/api/test_embedded.py)
    env.update(LATHE_TINKER_EMBEDDED_TRAINER="false")
    env.update(overrides)
    return env
