"""Per-organization rate limits and per-IP failed-auth limits, on the maintained `limits` library.

Counters live in Redis when the broker is Redis (every API process shares them) and in this
process's memory embedded. Fixed windows: one counter per window and identity, so a cost of a
gigabyte (upload bytes per day) is as cheap to count as one request. A counter store that is
down fails open (logged): a rate limit must not turn a Redis blip into an outage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from core.errors import TooManyRequests
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """One limit: `item` (amount per window) counted under `scope` per identity."""

    scope: str
    item: RateLimitItem
    what: str
    """How the 429 names what ran out, e.g. 'requests per minute'."""


class RateLimits:
    """The service's limits. Created once per API process, used from its event loop."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_rate_limit_storage_url
        self.requests = Limit(
            "requests",
            RateLimitItemPerMinute(settings.quotas.requests_per_minute),
            f"{settings.quotas.requests_per_minute} requests per minute",
        )
        self.failed_auth = Limit(
            "failed-auth",
            RateLimitItemPerMinute(settings.security.failed_auth_per_minute),
            f"{settings.security.failed_auth_per_minute} failed authentications per minute",
        )
        self.upload_bytes = Limit(
            "upload-bytes",
            RateLimitItemPerDay(settings.quotas.upload_bytes_per_day),
            f"{settings.quotas.upload_bytes_per_day} uploaded bytes per day",
        )
        self._limiter: FixedWindowRateLimiter | None = None

    @property
    def limiter(self) -> FixedWindowRateLimiter:
        """Built on first use, inside the event loop (the memory store starts a timer task)."""
        if self._limiter is None:
            options = {"implementation": "redispy"} if "redis" in self.url else {}
            storage = storage_from_string(self.url, **options)
            assert isinstance(storage, Storage), f"{self.url} is not an async+ storage"
            self._limiter = FixedWindowRateLimiter(storage)
        return self._limiter

    async def hit(self, limit: Limit, identity: str, cost: int = 1) -> None:
        """Count `cost` against the limit; TooManyRequests (with Retry-After) when it is spent.
        A cost that does not fit is refused before it is counted, so an upload too large for
        what is left of the day's budget does not use that rest up."""
        try:
            fits = cost == 1 or await self.limiter.test(
                limit.item, limit.scope, identity, cost=cost
            )
            if fits and await self.limiter.hit(limit.item, limit.scope, identity, cost=cost):
                return
            stats = await self.limiter.get_window_stats(limit.item, limit.scope, identity)
        except Exception as exc:  # the counter store is down: fail open
            log.warning("rate limit store unavailable (%s): not limiting", exc)
            return
        raise TooManyRequests(
            f"Rate limit reached: {limit.what}. Try again later.",
            retry_after=max(1.0, stats.reset_time - time.time()),
        )

    async def blocked(self, limit: Limit, identity: str) -> float | None:
        """Seconds until the limit frees up when it is spent now, else None (counts nothing)."""
        try:
            if await self.limiter.test(limit.item, limit.scope, identity):
                return None
            stats = await self.limiter.get_window_stats(limit.item, limit.scope, identity)
        except Exception as exc:
            log.warning("rate limit store unavailable (%s): not limiting", exc)
            return None
        return max(1.0, stats.reset_time - time.time())
