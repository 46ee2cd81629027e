"""Which secondary node homes a handle: the longest delegated prefix in the registry."""

from __future__ import annotations

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


class Registry:
    """The top-level node's prefix registry over its store."""

    def __init__(self, store: Store, own_prefix: str) -> None:
        self.store = store
        self.own_prefix = own_prefix

    def delegation(self, handle: Handle) -> Delegation | None:
        """The longest registered prefix (other than our own) above the handle's prefix."""
        chain = [p for p in ancestors(handle.homed_prefix) if fold(p) != fold(self.own_prefix)]
        if not chain:
            return None
        keys = [fold(f"{NA_PREFIX}/{p}") for p in chain]
        for prefix, record in zip(chain, self.store.get_many(keys), strict=True):
            if record is not None and any(v["type"] == "HS_SITE" for v in record.values):
                return Delegation(prefix, record)
        return None

    def homes(self, handle: Handle) -> bool:
        """True for prefix records in our space that no delegated node homes instead."""
        if not handle.is_prefix_record or not is_within(handle.suffix, self.own_prefix):
            return False
        found = self.delegation(handle)
        return found is None or fold(found.prefix) == fold(handle.suffix)
