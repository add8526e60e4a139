"""An explicit LRU of loaded models, keyed by model id (no hidden module-level caches).

Base models can be pinned so they are never evicted; everything else is evicted least
recently used first once `capacity` entries are loaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class ModelCache:
    def __init__(self, capacity: int):
        self.capacity = max(1, capacity)
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._pinned: set[str] = set()
        self._lock = threading.Lock()

    def get_or_load(self, key: str, load: Callable[[], Any], pin: bool = False) -> Any:
        with self._lock:  # loads are serialised: two requests never load the same model twice
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            value = load()
            self._entries[key] = value
            if pin:
                self._pinned.add(key)
            self._evict()
            return value

    def _evict(self) -> None:
        for key in list(self._entries):
            if len(self._entries) <= self.capacity:
                return
            if key not in self._pinned:
                del self._entries[key]

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._pinned.discard(key)

    def __contains__(self, key: str) -> bool:
        return key in self._entries
