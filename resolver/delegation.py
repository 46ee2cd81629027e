"""Which secondary node homes a handle: the longest delegated prefix in the registry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from idcore.identifier import NA_PREFIX, Handle, ancestors, fold, is_within
from idcore.site import site_url
from idcore.store import Record, Store


@dataclass(frozen=True)
class Delegation:
    """A prefix delegated to a secondary node, with the HS_SITE values that reach it.

    The registry keeps one per prefix while its store is unchanged, and a trace asks
    each for its URL once per record: both properties are worked out once.
    """

    prefix: str
    record: Record

    @cached_property
    def sites(self) -> list[dict[str, Any]]:
        """The HS_SITE values of the prefix record."""
        return [v for v in self.record.values if v["type"] == "HS_SITE"]

    @cached_property
    def base_url(self) -> str:
        """HTTP base URL of the primary site's first server."""
        return site_url(self.sites[0]) if self.sites else ""


# Prefix records and lookups kept between two writes: a bound, so unregistered prefixes
# asked for by a client cannot grow the cache without end.
_CACHE_LIMIT = 10_000


@dataclass(slots=True)
class _Cached:
    """What the registry read at one log position: prefix records and lookups' answers."""

    records: dict[str, Record | None] = field(default_factory=dict)
    found: dict[str, Delegation | None] = field(default_factory=dict)

    def full(self) -> bool:
        """True once it holds more than _CACHE_LIMIT entries."""
        return len(self.records) + len(self.found) > _CACHE_LIMIT


class Registry:
    """The top-level node's prefix registry over its store, cached while the store is unchanged."""

    def __init__(self, store: Store, own_prefix: str) -> None:
        self.store = store
        self.own_prefix = own_prefix
        self._lock = threading.Lock()
        self._position: tuple[str | None, int] | None = None
        self._cached = _Cached()

    def _current(self) -> _Cached | None:
        """The cache for the store's state now; None for a store without a change log."""
        if not getattr(self.store, "changelog", False):
            return None
        # Every write to a logged store moves its log position (whichever worker, follower
        # or reset made it), so what was read at an unchanged position is still current.
        # The position is read first: what is cached under it is never older than it.
        position = self.store.log_position()
        with self._lock:
            if position != self._position or self._cached.full():
                self._position, self._cached = position, _Cached()
            return self._cached

    def _prefix_records(self, keys: list[str], cache: _Cached | None) -> list[Record | None]:
        """The records under `keys` (folded 0.NA handles), None where there is none."""
        if cache is None:
            return self.store.get_many(keys)
        known = cache.records
        missing = [k for k in keys if k not in known]
        if missing:
            known.update(zip(missing, self.store.get_many(missing), strict=True))
        return [known[k] for k in keys]

    def delegation(self, handle: Handle) -> Delegation | None:
        """The longest registered prefix (other than our own) above the handle's prefix."""
        return self._delegation(handle, self._current())

    def pinned(self) -> Callable[[Handle], Delegation | None]:
        """delegation() as of now, for a task of many lookups (a trace): one position read.

        A write after this call is not seen by it; the registry's own lookups see it.
        """
        cache = self._current()
        return lambda handle: self._delegation(handle, cache)

    def _delegation(self, handle: Handle, cache: _Cached | None) -> Delegation | None:
        homed = fold(handle.homed_prefix)
        if cache is not None and homed in cache.found:
            return cache.found[homed]
        found = self._lookup(handle.homed_prefix, cache)
        if cache is not None:
            cache.found[homed] = found
        return found

    def _lookup(self, homed: str, cache: _Cached | None) -> Delegation | None:
        chain = [p for p in ancestors(homed) if fold(p) != fold(self.own_prefix)]
        if not chain:
            return None
        keys = [fold(f"{NA_PREFIX}/{p}") for p in chain]
        for prefix, record in zip(chain, self._prefix_records(keys, cache), strict=True):
            if record is not None and any(v["type"] == "HS_SITE" for v in record.values):
                return Delegation(prefix, record)
        return None

    def homes(self, handle: Handle) -> bool:
        """True for prefix records in our space that no delegated node homes instead."""
        if not handle.is_prefix_record or not is_within(handle.suffix, self.own_prefix):
            return False
        found = self.delegation(handle)
        return found is None or fold(found.prefix) == fold(handle.suffix)
