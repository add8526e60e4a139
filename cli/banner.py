"""`lathe serve`'s start-up banner, printed only once the port accepts connections: a URL shown
earlier would be refused for the seconds the app takes to start."""

from __future__ import annotations

import socket
import threading
import time


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host


def announce_when_listening(
    host: str, port: int, lines: list[str], timeout_s: float = 600.0
) -> threading.Thread:
    """Print `lines` from a daemon thread as soon as a TCP connect to host:port succeeds."""

    def wait() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((_reachable(host), port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            return  # never came up: uvicorn has said why
        print("\n".join(lines), flush=True)

    thread = threading.Thread(target=wait, name="lathe-banner", daemon=True)
    thread.start()
    return thread
