"""Run a command and, however it ends, stop every process it left behind.

`scripts/test.sh` runs pytest under this. The suite starts servers in sessions of their own
(so a signal to the terminal's process group does not reach them), and an interrupted pytest
would leave them running. As a child subreaper (Linux's PR_SET_CHILD_SUBREAPER), this process
inherits every orphaned descendant instead of init, so it can find and stop them all: SIGTERM,
then SIGKILL for those still there after 10 s. Its exit status is the command's.

Meanwhile it reaps the orphans that exit, as init would: otherwise each stays a zombie until the
suite ends, and a test that waits for a process to be gone would wait in vain.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading

import psutil

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def stop_descendants(grace_s: float = 10.0) -> None:
    procs = psutil.Process().children(recursive=True)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def reap_orphans(child_pid: int, stop: threading.Event) -> None:
    """Collect adopted descendants that exited (never the command itself: Popen waits for it)."""
    while not stop.wait(0.5):
        for proc in psutil.Process().children():
            with contextlib.suppress(psutil.Error, ChildProcessError):
                if proc.pid != child_pid and proc.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(proc.pid, os.WNOHANG)


def main(argv: list[str]) -> int:
    become_subreaper()
    child = subprocess.Popen(argv)
    stop = threading.Event()
    threading.Thread(target=reap_orphans, args=(child.pid, stop), daemon=True).start()
    # Ctrl-C reaches the child through the terminal's process group; SIGTERM is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        code = child.wait()
    finally:
        stop.set()
        stop_descendants()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
