"""A real HTTP server on a free local port that records the webhooks it receives."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    """Answer this many requests with a 500 before accepting any."""
    got: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, done: Callable[[list[Received]], bool], timeout: float = 120) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if done(list(self.got)):
                    return list(self.got)
            time.sleep(0.2)
        raise TimeoutError(f"receiver got {len(self.got)} requests: {self.got}")


@contextlib.contextmanager
def receiver(fail_first: int = 0) -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                state.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if len(state.answered) < state.fail_first else 200
                state.answered.append(status)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"not now" if status == 500 else b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", fail_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
