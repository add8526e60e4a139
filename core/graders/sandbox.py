"""Running a client's `python` grader, only where the operator enabled the sandbox.

Each run is its own short-lived interpreter, started as
`unshare -n prlimit --cpu --as --fsize --nofile -- [setpriv --reuid nobody] python -I`:
a network namespace with nothing in it (no network at all), as user `nobody` when Lathe
runs as root and `nobody` can start its interpreter (else as Lathe's own user), CPU
seconds, address space, file size and open files limited, an empty environment and a
wall-clock timeout after which its whole process group is killed. Its answer goes to a file
(so `--fsize` also caps how much it can print). Its files live under the deployment's own
temp directory (core.tempdirs), never the system's, which `nobody` may not be able to reach
(e.g. under /root): the request comes on its standard input, its answer goes to files Lathe
opened, and its working directory is one it may read. As `nobody` the interpreter may not
reach Lathe's virtual environment (e.g. one under /root): it then runs on the system's standard
library alone, with no third-party packages. OpenAI's contract: the source defines
`grade(sample, item) -> float`, `sample` holding `output_text` (and `output_json` when the
text is JSON).

Where no network namespace can be made (no `unshare`, no privilege), python graders are
refused rather than run with a network.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from functools import cache
from typing import Any

from core.graders.base import PythonGraderError
from core.tempdirs import temp_root

NOBODY = 65534
MAX_OUTPUT_BYTES = 1024 * 1024

RUNNER = r"""
import json, sys
data = json.load(sys.stdin)
namespace = {"__name__": "grader"}
exec(compile(data["source"], "grader.py", "exec"), namespace)
score = float(namespace["grade"](data["sample"], data["item"]))
sys.stdout.write(json.dumps({"score": score}))
"""


@cache
def isolation() -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(the command before the limits: a network namespace; the command after them: dropping
    root to `nobody`, or nothing), or None if this host cannot make a network namespace."""
    unshare, prlimit = shutil.which("unshare"), shutil.which("prlimit")
    if unshare is None or prlimit is None:
        return None
    netns = (unshare, "--net") if os.geteuid() == 0 else (unshare, "-rn")
    candidates: list[tuple[str, ...]] = []
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv:
        candidates.append((setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"))
    candidates.append(())
    for drop in candidates:  # the first under which this interpreter starts
        probe = [*netns, prlimit, "--", *drop, sys.executable, "-I", "-c", "pass"]
        try:
            done = subprocess.run(probe, capture_output=True, timeout=30, cwd="/")
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return netns, drop
    return None


def _sample(text: str) -> dict[str, Any]:
    sample: dict[str, Any] = {"output_text": text}
    try:
        sample["output_json"] = json.loads(text)
    except ValueError:
        sample["output_json"] = None
    return sample


def run_python_grader(source: str, sample_text: str, item: dict, settings: Any) -> float:
    """The grader's score; PythonGraderError if it raised, ran over a limit or gave no number."""
    found = isolation()
    if found is None:
        raise PythonGraderError("this host cannot isolate python graders from the network")
    timeout = float(settings.graders.python_timeout_s)
    limits = (
        shutil.which("prlimit") or "prlimit",
        f"--cpu={max(1, math.ceil(timeout))}",
        f"--as={int(settings.graders.python_memory_mb) * 1024 * 1024}",
        f"--fsize={MAX_OUTPUT_BYTES}",
        "--nofile=64",
        "--",
    )
    netns, drop = found
    with tempfile.TemporaryDirectory(prefix="lathe-grader-", dir=temp_root(settings)) as tmp:
        os.chmod(tmp, 0o755)  # its working directory: `nobody` may list it, not write to it
        with (
            tempfile.TemporaryFile(dir=tmp) as request,
            tempfile.TemporaryFile(dir=tmp) as out,
            tempfile.TemporaryFile(dir=tmp) as err,
        ):
            payload = {"source": source, "sample": _sample(sample_text), "item": item}
            request.write(json.dumps(payload).encode())
            request.seek(0)
            proc = subprocess.Popen(
                [*netns, *limits, *drop, sys.executable, "-I", "-c", RUNNER],
                stdin=request,
                stdout=out,
                stderr=err,
                cwd=tmp,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise PythonGraderError(f"the python grader ran over {timeout}s") from None
            out.seek(0)
            err.seek(0)
            answer = out.read(MAX_OUTPUT_BYTES)
            problem = err.read(4000).decode(errors="replace").strip()
    if code != 0:
        last = problem.splitlines()[-1] if problem else f"exit status {code}"
        raise PythonGraderError(f"the python grader failed: {last}")
    try:
        score = float(json.loads(answer)["score"])
    except (ValueError, KeyError, TypeError):
        raise PythonGraderError("the python grader's grade() returned no number") from None
    if not math.isfinite(score):
        raise PythonGraderError(f"the python grader's grade() returned {score}")
    return score
