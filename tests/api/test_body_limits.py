"""Authentication and size limits come before any body is read, on every route: a 200 MB body
without a key is a 401 that costs the server no memory, an unauthenticated upload never
reaches the disk, and JSON bodies over LATHE_MAX_JSON_BYTES are a 413 (declared or streamed).
The server's RSS is measured with psutil while the client pushes the body."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

MB = 1024 * 1024
MAX_JSON = 256 * 1024
RSS_BUDGET = 30 * MB
"""Growth allowed while 200 MB are offered: a parsed body would be several times its size."""


@pytest.fixture(scope="module")
def server(embedded_api):
    assert embedded_api.env["LATHE_MAX_JSON_BYTES"] == str(MAX_JSON)
    return embedded_api.as_org("body-limits")


class PeakRss:
    """Samples a process's RSS every 20 ms on a thread until stopped; `growth` is the peak
    above the RSS at start."""

    def __init__(self, server) -> None:
        self.server, self.start, self.peak = server, server.rss(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.server.rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _raw_post(server, path: str, headers: dict[str, str], body_bytes: int) -> tuple[bytes, int]:
    """POST with a declared Content-Length: read the answer to the headers alone (so an answer
    at all proves that no byte of the body was needed), then try to push the whole body.
    Returns (answer, bytes the server took before closing)."""
    head = f"POST {path} HTTP/1.1\r\nHost: lathe\r\nContent-Length: {body_bytes}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head.encode())
        reply = b""
        while not (b"\r\n\r\n" in reply and reply.endswith(b"}}")):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        sent, chunk = 0, b"[" + b"1," * (MB // 2 - 1) + b"1"
        try:
            while sent < body_bytes:
                sent += s.send(chunk[: body_bytes - sent])
        except OSError:  # the server closed the connection: the rest was never read
            pass
    return reply, sent


def _status_and_json(reply: bytes) -> tuple[int, dict, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), head.lower()


def test_unauthenticated_200mb_json_is_401_without_reading_it(server):
    with PeakRss(server) as rss:
        reply, sent = _raw_post(
            server, "/v1/fine_tuning/jobs", {"Content-Type": "application/json"}, 200 * MB
        )
    status, body, head = _status_and_json(reply)
    print(f"\n200 MB unauthenticated: RSS +{rss.growth / MB:.1f} MB, {sent / MB:.0f} MB pushed")
    assert status == 401 and body["error"]["code"] == "missing_api_key"
    assert b"connection: close" in head
    assert rss.growth < RSS_BUDGET
    assert httpx.get(f"{server.url}/models", headers=server.headers()).status_code == 200


def test_wrong_key_upload_is_401_and_never_touches_disk(server):
    headers = {
        "Authorization": "Bearer sk-lathe-wrong",
        "Content-Type": "multipart/form-data; boundary=b",
    }
    with PeakRss(server) as rss:
        reply, _ = _raw_post(server, "/v1/files", headers, 100 * MB)
    status, body, _ = _status_and_json(reply)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"  # nothing spooled:
    # the answer came before the first byte of the multipart body was sent
    assert rss.growth < RSS_BUDGET


def test_declared_json_body_over_the_limit_is_413_unread(server):
    headers = {"Content-Type": "application/json", **server.headers()}
    with PeakRss(server) as rss:
        reply, _ = _raw_post(server, "/v1/fine_tuning/jobs", headers, 200 * MB)
    status, body, _ = _status_and_json(reply)
    assert status == 413, body
    assert body["error"] == {
        "message": f"request body exceeds the {MAX_JSON} byte limit",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }
    assert rss.growth < RSS_BUDGET


def test_streamed_json_body_is_cut_off_at_the_limit(server):
    def body() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        yield b'{"model": "tiny-llama", "training_file": "'
        for _ in range(64):  # 4 MiB, were it all read
            yield b"a" * (64 * 1024)
        yield b'"}'

    r = httpx.post(
        f"{server.url}/chat/completions",
        content=body(),
        headers={"Content-Type": "application/json", **server.headers()},
        timeout=60,
    )
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    # a body under the limit is read and validated as usual (400 naming the field)
    r = httpx.post(
        f"{server.url}/fine_tuning/jobs", json={"model": "tiny-llama"}, headers=server.headers()
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "training_file"
