"""scripts/test.sh: it documents what it installs and how long it takes, has a quick mode, and
an interrupted run leaves nothing running (scripts/reaped.py stops what the suite started)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

# A stand-in for pytest: starts a server in a session of its own (as tests/utils/processes.Proc
# does, so Ctrl-C to the terminal's process group never reaches it), says its pid, and waits.
SUITE = """
import subprocess, sys, time
server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          start_new_session=True)
print(server.pid, flush=True)
time.sleep(600)
"""


def test_help_documents_sizes_and_the_quick_mode():
    out = subprocess.run(
        ["bash", "scripts/test.sh", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    for fact in ("--quick", ".venv-vllm", "GB", "min", "tests/ui", "CI"):
        assert fact in out.stdout, fact


def test_quick_mode_is_refused_in_ci():
    env = {**os.environ, "CI": "true"}
    out = subprocess.run(["bash", "scripts/test.sh", "--quick"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 2 and "CI runs everything" in out.stderr


def _interrupted(send) -> psutil.Process:
    run = subprocess.Popen(
        [sys.executable, "scripts/reaped.py", sys.executable, "-c", SUITE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the "terminal" of this test
    )
    server = psutil.Process(int(run.stdout.readline()))
    assert server.is_running()
    send(run)
    assert run.wait(timeout=60) != 0
    return server


def _gone(proc: psutil.Process) -> bool:
    try:
        proc.wait(timeout=30)
    except psutil.TimeoutExpired:
        return False
    return True


def test_ctrl_c_leaves_no_server_running():
    server = _interrupted(lambda run: os.killpg(run.pid, signal.SIGINT))
    assert _gone(server)


def test_sigterm_leaves_no_server_running():
    server = _interrupted(lambda run: run.send_signal(signal.SIGTERM))
    assert _gone(server)


def test_the_exit_status_is_the_commands():
    ok = subprocess.run([sys.executable, "scripts/reaped.py", "true"], cwd=ROOT, timeout=60)
    failed = subprocess.run([sys.executable, "scripts/reaped.py", "false"], cwd=ROOT, timeout=60)
    assert (ok.returncode, failed.returncode) == (0, 1)
