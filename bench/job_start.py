"""Job start-up: a training process forked from the warm forkserver vs a fresh interpreter.

Every run of a job trains in a process of its own (core.runs.supervisor). Before training it
must have the training stack imported (core.runs.forkserver.PRELOAD: torch, transformers, peft,
trl, Lathe's methods). This measures, for `--runs` sequential runs, the wall time from asking
for the process to that process having the stack imported and exiting:
- baseline: `python -c "import <PRELOAD>"`, what a worker with LATHE_WARM_TRAINING=false pays;
- lathe: a process forked from the forkserver (started, and its import paid, once before the
  timed runs, as the worker does at start-up).

    .venv/bin/python bench/job_start.py --runs 5

Not run in CI.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from multiprocessing import forkserver as mp_forkserver
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.runs import forkserver as lathe_forkserver  # noqa: E402


def _import_stack() -> None:
    for name in lathe_forkserver.PRELOAD:
        __import__(name)


def cold() -> float:
    began = time.perf_counter()
    code = "import " + ", ".join(lathe_forkserver.PRELOAD)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - began


def warm() -> float:
    began = time.perf_counter()
    proc = lathe_forkserver._context().Process(target=_import_stack)
    proc.start()
    proc.join()
    assert proc.exitcode == 0, proc.exitcode
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    began = time.perf_counter()
    lathe_forkserver._context()
    mp_forkserver.ensure_running()
    warm()  # the forkserver's own import happens here, once, as at worker start-up
    print(f"forkserver warm-up (once per worker): {time.perf_counter() - began:.2f} s")
    baseline = [cold() for _ in range(args.runs)]
    lathe = [warm() for _ in range(args.runs)]
    b, w = statistics.median(baseline), statistics.median(lathe)
    print(f"fresh interpreter: median {b:.3f} s per run ({args.runs} runs)")
    print(f"warm fork:         median {w:.3f} s per run ({args.runs} runs)")
    print(f"ratio (fresh / warm): {b / w:.1f}x")


if __name__ == "__main__":
    main()
