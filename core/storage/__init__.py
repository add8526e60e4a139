"""Object storage: `file://` (local directory) or `s3://bucket/prefix`, chosen by settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from core.settings import Settings
from core.storage.base import Storage, put_dir

__all__ = ["Storage", "get_storage", "put_dir", "worker_storage"]


@lru_cache
def _make(url: str, endpoint_url: str | None, region: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from core.storage.local import LocalStorage

        return LocalStorage(Path(parsed.path))
    if parsed.scheme == "s3":
        from core.storage.s3 import S3Storage

        return S3Storage(parsed.netloc, parsed.path, endpoint_url=endpoint_url, region=region)
    raise ValueError(f"unsupported storage_url scheme: {url!r} (use file:// or s3://)")


def get_storage(settings: Settings) -> Storage:
    return _make(
        settings.resolved_storage_url, settings.storage.s3_endpoint_url, settings.storage.s3_region
    )


def worker_storage(settings: Settings, budget_s: float | None = None) -> Storage:
    """The store as the worker uses it: each operation retried through an outage for
    `budget_s` (default LATHE_RETRY_BUDGET_S)."""
    from core.storage.retrying import RetryingStorage

    budget = settings.jobs.retry_budget_s if budget_s is None else budget_s
    return RetryingStorage(get_storage(settings), budget)
