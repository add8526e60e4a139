"""Start a streamed body before the response does, so its failures are still a status code."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator


def started(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes, with the first chunk already read. A download's storage request runs
    when its iterator first advances; a StreamingResponse advances it only after sending a 200,
    so an object store outage would come out as a truncated 200. Read here (in the route), it
    raises in time to be a 503 (`api.errors`) or a 404."""
    it = iter(chunks)
    first = next(it, None)
    return it if first is None else itertools.chain([first], it)
