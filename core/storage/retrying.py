"""A Storage whose every operation is retried through a transient outage (core.retry).

The worker's storage: a short S3 outage stalls a checkpoint or a download instead of failing
the job. `put_stream` is retried only for seekable streams (an upload restarted from the top).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.retry import retry
from core.storage.base import CHUNK, Storage


class RetryingStorage:
    def __init__(self, inner: Storage, budget_s: float):
        self.inner = inner
        self.budget_s = budget_s

    def _retry(self, what: str, fn):
        return retry(fn, what=f"storage {what}", budget_s=self.budget_s)

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        if not stream.seekable():
            return self.inner.put_stream(key, stream)
        start = stream.tell()

        def put() -> None:
            stream.seek(start)
            self.inner.put_stream(key, stream)

        return self._retry("upload", put)

    def put_file(self, key: str, path: Path) -> None:
        return self._retry("upload", lambda: self.inner.put_file(key, path))

    def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        return self.inner.iter_bytes(key, chunk_size)  # a stream half-read cannot be replayed

    def download(self, key: str, path: Path) -> Path:
        return self._retry("download", lambda: self.inner.download(key, path))

    def exists(self, key: str) -> bool:
        return self._retry("lookup", lambda: self.inner.exists(key))

    def list_keys(self, prefix: str) -> list[str]:
        return self._retry("listing", lambda: self.inner.list_keys(prefix))

    def delete_prefix(self, prefix: str) -> None:
        return self._retry("delete", lambda: self.inner.delete_prefix(prefix))

    def list_entries(self, prefix: str) -> list[tuple[str, float]]:
        return self._retry("listing", lambda: self.inner.list_entries(prefix))

    def abort_stale_uploads(self, older_than_s: float) -> int:
        return self._retry("upload cleanup", lambda: self.inner.abort_stale_uploads(older_than_s))
