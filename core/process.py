"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: on Linux the kernel sends the child `sig` when its
    parent dies, however it dies (kill -9 included). None elsewhere (no such facility)."""
    if sys.platform != "linux":
        return None

    def preexec() -> None:
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, sig)  # 1 = PR_SET_PDEATHSIG

    return preexec
