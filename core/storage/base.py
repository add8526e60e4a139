"""One interface over object stores. Keys are `orgs/{org}/...`; values are bytes streams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class Storage(Protocol):
    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store a readable stream without holding it in memory; the object appears whole or
        not at all."""

    def put_file(self, key: str, path: Path) -> None: ...

    def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]: ...

    def download(self, key: str, path: Path) -> Path: ...

    def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix/`, sorted."""

    def delete_prefix(self, prefix: str) -> None: ...

    def list_entries(self, prefix: str) -> list[tuple[str, float]]:
        """(key, last-modified Unix time) of every key under `prefix/`: the sweeper's view."""

    def abort_stale_uploads(self, older_than_s: float) -> int:
        """Discard uploads begun more than `older_than_s` ago and never completed (S3
        multipart uploads, local temp files); returns how many."""


def put_dir(storage: Storage, prefix: str, directory: Path) -> list[str]:
    """Upload every file under `directory` to `prefix/<relative path>`."""
    keys = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(directory).as_posix()}"
        storage.put_file(key, path)
        keys.append(key)
    return keys
