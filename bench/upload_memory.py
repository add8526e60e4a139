"""Upload memory benchmark: peak RSS growth and throughput of `POST /v1/files`.

Starts the real API (`lathe serve --no-worker`, embedded settings in a temp dir), generates a
JSONL chat file of each size, uploads it with httpx as a streamed multipart body, samples the
server process's RSS every 20 ms, and prints the peak growth over the idle baseline and the
throughput (file MB / request seconds, validation and storage included). The upload path must
stay in constant memory: growth should not depend on the size (issue 3 allows ~100 MB at 1 GB).

    .venv/bin/python bench/upload_memory.py --sizes 100M,1G

Not run in CI (a 1 GB upload takes a while and needs ~4 GB of free disk under --dir).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
UNITS = {"K": 1024, "M": MB, "G": 1024 * MB}


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def make_jsonl(path: Path, size: int) -> Path:
    """A chat dataset of about `size` bytes, each row different (as real data is)."""
    with open(path, "w", encoding="utf-8") as f:
        written, i = 0, 0
        while written < size:
            row = (
                json.dumps(
                    {
                        "messages": [
                            {
                                "role": "user",
                                "content": f"Question {i}: what is {i} plus {i * 7 % 1000}?",
                            },
                            {
                                "role": "assistant",
                                "content": f"The answer is {i + i * 7 % 1000}. " * 3,
                            },
                        ]
                    }
                )
                + "\n"
            )
            f.write(row)
            written += len(row)
            i += 1
    return path


def multipart(path: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    """A streamed multipart body (file + purpose) and its exact length."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
        f'fine-tune\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with open(path, "rb") as f:
            while chunk := f.read(MB):
                yield chunk
        yield tail

    return body(), len(head) + path.stat().st_size + len(tail)


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def upload(url: str, key: str, path: Path) -> tuple[float, dict]:
    boundary = uuid.uuid4().hex
    body, length = multipart(path, boundary)
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Length": str(length),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    start = time.perf_counter()
    r = httpx.post(f"{url}/files", headers=headers, content=body, timeout=3600)
    elapsed = time.perf_counter() - start
    r.raise_for_status()
    return elapsed, r.json()


def start_api(work: Path, port: int, max_bytes: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATHE_")}
    env.update(
        LATHE_DATA_DIR=str(work / "data"),
        LATHE_MAX_UPLOAD_BYTES=str(max_bytes),
        LATHE_EMBEDDED_WORKER="false",
        LATHE_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        TMPDIR=str(work / "tmp"),
    )
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    log = open(work / "api.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--no-worker", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((work / "api.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, (work / "data" / "api_key").read_text().strip()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise TimeoutError("the API did not start:\n" + (work / "api.log").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100M,1G", help="comma-separated, e.g. 100M,1G")
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--port", type=int, default=8979)
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="lathe-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        proc, key = start_api(work, args.port, max(sizes) * 2)
        url = f"http://127.0.0.1:{args.port}/v1"
        try:
            upload(url, key, make_jsonl(work / "warmup.jsonl", 64 * 1024))  # lazy imports
            print(f"{'size':>8} {'peak RSS growth':>16} {'throughput':>12} {'seconds':>8}  status")
            for size in sizes:
                path = make_jsonl(work / f"upload-{size // MB}MB.jsonl", size)
                baseline = psutil.Process(proc.pid).memory_info().rss
                sampler = RssSampler(proc.pid)
                sampler.start()
                elapsed, body = upload(url, key, path)
                growth = (sampler.stop() - baseline) / MB
                mb = path.stat().st_size / MB
                print(
                    f"{mb:>6.0f}MB {growth:>13.1f} MB {mb / elapsed:>7.1f} MB/s {elapsed:>8.1f}"
                    f"  {body['status']} ({body['n_examples']} examples)",
                    flush=True,
                )
                path.unlink()
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
