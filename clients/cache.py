"""A thread-safe TTL cache with hit/miss statistics (after dnspython's resolver cache)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Never cache longer than a day, whatever a value claims.
MAX_TTL = 86400.0


@dataclass
class CacheStats:
    """Counters of a cache."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0


class TTLCache(Generic[T]):
    """Entries expire after their own TTL; the least recently used go first when full."""

    def __init__(self, capacity: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.stats = CacheStats()
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        """A fresh entry, or None."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.stats.misses += 1
                return None
            expires, value = item
            if expires <= self._clock():
                del self._data[key]
                self.stats.misses += 1
                return None
            self._data.move_to_end(key)
            self.stats.hits += 1
            return value

    def put(self, key: str, value: T, ttl: float) -> None:
        """Keep a value for ttl seconds (nothing is kept for ttl <= 0)."""
        if ttl <= 0 or self.capacity <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + min(ttl, MAX_TTL), value)
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)
                self.stats.evictions += 1

    def discard(self, key: str) -> None:
        """Forget one entry."""
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def record_ttl(values: Sequence[dict[str, Any]], now: float | None = None) -> float:
    """Seconds a record may be cached: the shortest TTL among its values."""
    wall = time.time() if now is None else now
    best = MAX_TTL
    for value in values:
        ttl = value.get("ttl", 86400)
        if isinstance(ttl, int | float):
            seconds = float(ttl)
        else:
            try:
                expiry = datetime.fromisoformat(str(ttl).replace("Z", "+00:00"))
            except ValueError:
                continue
            if expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=UTC)
            seconds = expiry.timestamp() - wall
        best = min(best, seconds)
    return best
