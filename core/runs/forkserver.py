"""Training processes forked from a warmed-up parent, so a job starts training at once.

Importing the training stack (torch, transformers, peft, trl) costs seconds of CPU, and a
worker that paid it in every job's fresh process spent longer starting small jobs than
training them. Instead the worker keeps a multiprocessing *forkserver* that imported the stack
once, and forks each job's training process (`core.runs.train_process.main`) from it:
- forking is safe there: the forkserver only imports (no CUDA context, no thread pools), and
  CUDA is probed through NVML (PYTORCH_NVML_BASED_CUDA_CHECK), which leaves the driver alone;
- a forked process still dies with its worker, however the worker dies (kill -9 included): it
  holds the read end of a pipe whose write end only the worker has, and kills itself when that
  pipe closes (its parent is the forkserver, so the kernel's parent-death signal cannot say);
- it runs with the worker's environment and working directory as they are when the job starts
  (not as they were when the forkserver started), as a fresh process would;
- it is named after its job in `ps` (setproctitle), as a fresh process was by its arguments.
LATHE_WARM_TRAINING=false starts a fresh interpreter per job instead (an escape hatch, e.g.
for a CUDA stack that initialises the driver on import).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Protocol

from core.process import die_with_parent

PRELOAD = ["core.runs.train_process", "torch", "transformers", "peft", "trl", "core.methods"]
"""Imported once by the forkserver. Not bitsandbytes: it loads CUDA libraries on import."""


class TrainingProcess(Protocol):
    """What the supervisor needs of a training process (subprocess.Popen has it)."""

    pid: int | None

    def poll(self) -> int | None: ...
    def send_signal(self, sig: int) -> None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...

    @property
    def returncode(self) -> int | None: ...


class _Forked:
    """A multiprocessing.Process forked by the forkserver, behind Popen's interface."""

    def __init__(self, proc: multiprocessing.process.BaseProcess, lifeline: Connection) -> None:
        self._proc = proc
        self._lifeline = lifeline  # held open while the process lives: closing it ends it
        self.pid = proc.pid

    def poll(self) -> int | None:
        code = self._proc.exitcode
        if code is not None and not self._lifeline.closed:
            self._lifeline.close()
        return code

    @property
    def returncode(self) -> int | None:
        return self._proc.exitcode

    def send_signal(self, sig: int) -> None:
        if self._proc.exitcode is None and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _context() -> multiprocessing.context.BaseContext:
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # inherited by the forkserver
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the forkserver in the background (at worker start-up), so that even the first job
    finds the stack imported."""
    _context()
    threading.Thread(target=forkserver.ensure_running, name="warm-training", daemon=True).start()


def start(argv: list[str], *, warm: bool) -> TrainingProcess:
    """One run's training process: `python -m core.runs.train_process ARGV...`, forked from the
    warm forkserver or, with warm=False, a fresh interpreter."""
    if not warm:
        return subprocess.Popen(
            [sys.executable, "-m", "core.runs.train_process", *argv],
            preexec_fn=die_with_parent(signal.SIGKILL),
        )
    ctx = _context()
    watched, lifeline = ctx.Pipe(duplex=False)
    here = (dict(os.environ), os.getcwd())
    proc = ctx.Process(target=_forked_main, args=(argv, watched, here), name=f"train-{argv[0]}")
    proc.start()
    watched.close()
    return _Forked(proc, lifeline)


def _forked_main(argv: list[str], watched: Connection, here: tuple[dict[str, str], str]) -> None:
    threading.Thread(target=_die_with_worker, args=(watched,), daemon=True).start()
    with contextlib.suppress(ImportError):  # first: it finds argv's memory through environ
        from setproctitle import setproctitle

        setproctitle(" ".join([sys.executable, "-m", "core.runs.train_process", *argv]))
    _take_on(*here)
    from core.runs.train_process import main

    sys.exit(main(argv))


def _take_on(environ: dict[str, str], cwd: str) -> None:
    """The worker's environment and directory now; what the forkserver read of its own at
    import (cached settings, OpenMP's thread count) is read again from them."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    from core.settings import get_settings

    get_settings.cache_clear()
    threads = environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


def _die_with_worker(watched: Connection) -> None:
    """Block on the worker's end of the pipe; when the worker is gone, so is this process."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            watched.recv()
    os.kill(os.getpid(), signal.SIGKILL)
