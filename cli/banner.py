"""`lathe serve`'s start-up banner, printed only once every part answers: the API's port, the
inference service and the embedded worker. A URL shown earlier would be refused (or a chat
answered 503) for the seconds the rest takes to start, and a banner printed under a screen of
start-up logs is missed — so it is the last thing a first-time user sees."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host


def port_accepts(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((_reachable(host), port), timeout=1):
                return True
        except OSError:
            return False

    return check


def announce_when_ready(
    lines: list[str],
    ready: Sequence[Callable[[], bool]],
    out: TextIO | None = None,
    timeout_s: float = 900.0,
) -> threading.Event:
    """Print `lines` to `out` from a daemon thread once every `ready` check passes; the event
    returned is set once they are printed."""
    shown = threading.Event()

    def wait() -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(ready)
        while pending and time.monotonic() < deadline:
            pending = [check for check in pending if not check()]
            if pending:
                time.sleep(0.2)
        if pending:
            return  # a part never came up: its log says why
        print("\n".join(lines), file=out or sys.stdout, flush=True)
        shown.set()

    threading.Thread(target=wait, name="lathe-banner", daemon=True).start()
    return shown
