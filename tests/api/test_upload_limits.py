"""The upload size limit: 413 in OpenAI's envelope, before the body is read when its declared
length says so, and while streaming when it does not. An embedded API of its own (SQLite,
local storage, no worker) runs with a 64 KiB limit."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.utils.processes import Proc, base_env, free_port, lathe, wait_http

LIMIT = 64 * 1024
TOO_LARGE = {
    "message": f"file exceeds the {LIMIT} byte limit",
    "type": "invalid_request_error",
    "param": "file",
    "code": "file_too_large",
}


@dataclass
class SmallApi:
    port: int
    key: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=self.key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def small_api(tmp_path_factory) -> Iterator[SmallApi]:
    root = tmp_path_factory.mktemp("small-api")
    port = free_port()
    env = base_env(
        LATHE_DATA_DIR=str(root / "data"),
        LATHE_MAX_UPLOAD_BYTES=str(LIMIT),
        LATHE_EMBEDDED_WORKER="false",
    )
    api = Proc(lathe("serve", "--no-worker", "--port", str(port)), env, root / "api.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", api)
        yield SmallApi(port, (root / "data" / "api_key").read_text().strip())
    finally:
        api.stop()


def _file_of(size: int) -> bytes:
    """One valid JSONL row of exactly `size` bytes: {"text": "aaa..."}\\n is 13 + len(text)."""
    data = (json.dumps({"text": "a" * (size - 13)}) + "\n").encode()
    assert len(data) == size
    return data


def test_a_file_at_the_limit_is_accepted_one_byte_more_is_413(small_api):
    client = small_api.client()
    f = client.files.create(file=("d.jsonl", _file_of(LIMIT)), purpose="fine-tune")
    assert (f.status, f.bytes) == ("processed", LIMIT)
    with pytest.raises(openai.APIStatusError) as exc:  # checked while spooling the file
        client.files.create(file=("d.jsonl", _file_of(LIMIT + 1)), purpose="fine-tune")
    assert exc.value.status_code == 413
    assert exc.value.response.json() == {"error": TOO_LARGE}


def test_declared_length_over_the_limit_is_refused_unread(small_api):
    with pytest.raises(openai.APIStatusError) as exc:
        small_api.client().files.create(file=("d.jsonl", _file_of(4 * LIMIT)), purpose="fine-tune")
    assert exc.value.status_code == 413 and exc.value.response.json() == {"error": TOO_LARGE}
    # 10 GB declared, nothing sent: the answer comes at once, so no byte of it was waited for
    with socket.create_connection(("127.0.0.1", small_api.port), timeout=10) as s:
        s.sendall(
            f"POST /v1/files HTTP/1.1\r\nHost: lathe\r\nAuthorization: Bearer "
            f"{small_api.key}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 10000000000\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert json.loads(body) == {"error": TOO_LARGE}


def test_chunked_upload_is_cut_off_at_the_limit(small_api):
    def body() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield (
            b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="d.jsonl"\r\n\r\n'
        )
        for _ in range(64):  # 4 MiB, were it all read
            yield (json.dumps({"text": "a" * (64 * 1024 - 13)}) + "\n").encode()
        yield b"\r\n--b--\r\n"

    r = httpx.post(
        f"{small_api.url}/files",
        content=body(),
        timeout=60,
        headers={
            "Authorization": f"Bearer {small_api.key}",
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413 and r.json() == {"error": TOO_LARGE}
    # the API is fine afterwards, and kept nothing of the refused uploads
    client = small_api.client()
    assert (
        client.files.create(file=("ok.jsonl", _file_of(100)), purpose="fine-tune").status
        == "processed"
    )
    assert all(f.filename == "ok.jsonl" or f.bytes == LIMIT for f in client.files.list().data)
