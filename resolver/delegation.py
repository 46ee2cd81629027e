"""Which secondary node homes a handle: the longest delegated prefix in the registry."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from idcore.identifier import NA_PREFIX, Handle, ancestors, fold, is_within
from idcore.site import site_url
from idcore.store import Record, Store


@dataclass(frozen=True, slots=True)
class Delegation:
    """A prefix delegated to a secondary node, with the HS_SITE values that reach it."""

    prefix: str
    record: Record

    @property
    def sites(self) -> list[dict[str, Any]]:
        """The HS_SITE values of the prefix record."""
        return [v for v in self.record.values if v["type"] == "HS_SITE"]

    @property
    def base_url(self) -> str:
        """HTTP base URL of the primary site's first server."""
        return site_url(self.sites[0]) if self.sites else ""


# Prefix records kept between two writes: a bound, so unregistered prefixes asked for by
# a client cannot grow the cache without end.
_CACHE_LIMIT = 10_000


class Registry:
    """The top-level node's prefix registry over its store, cached while the store is unchanged."""

    def __init__(self, store: Store, own_prefix: str) -> None:
        self.store = store
        self.own_prefix = own_prefix
        self._lock = threading.Lock()
        self._position: tuple[str | None, int] | None = None
        self._records: dict[str, Record | None] = {}

    def _prefix_records(self, keys: list[str]) -> list[Record | None]:
        """The records under `keys` (folded 0.NA handles), None where there is none."""
        if not getattr(self.store, "changelog", False):
            return self.store.get_many(keys)
        # Every write to a logged store moves its log position (whichever worker, follower
        # or reset made it), so records read at an unchanged position are still current.
        # The position is read first: what is cached under it is never older than it.
        position = self.store.log_position()
        with self._lock:
            if position != self._position or len(self._records) > _CACHE_LIMIT:
                self._position, self._records = position, {}
            cache = self._records
        missing = [k for k in keys if k not in cache]
        if missing:
            cache.update(zip(missing, self.store.get_many(missing), strict=True))
        return [cache[k] for k in keys]

    def delegation(self, handle: Handle) -> Delegation | None:
        """The longest registered prefix (other than our own) above the handle's prefix."""
        chain = [p for p in ancestors(handle.homed_prefix) if fold(p) != fold(self.own_prefix)]
        if not chain:
            return None
        keys = [fold(f"{NA_PREFIX}/{p}") for p in chain]
        for prefix, record in zip(chain, self._prefix_records(keys), strict=True):
            if record is not None and any(v["type"] == "HS_SITE" for v in record.values):
                return Delegation(prefix, record)
        return None

    def homes(self, handle: Handle) -> bool:
        """True for prefix records in our space that no delegated node homes instead."""
        if not handle.is_prefix_record or not is_within(handle.suffix, self.own_prefix):
            return False
        found = self.delegation(handle)
        return found is None or fold(found.prefix) == fold(handle.suffix)
