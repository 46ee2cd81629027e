"""The Store protocol every back end implements, and the factory that picks one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from idcore.identifier import fold


@dataclass(slots=True)
class Record:
    """A stored handle record: the handle as first written and its wire values."""

    handle: str
    values: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Case-folded lookup key."""
        return fold(self.handle)

    @property
    def prefix_key(self) -> str:
        """Case-folded prefix, used to list handles by prefix."""
        return fold(self.handle.split("/", 1)[0])

    def dumps(self) -> str:
        """Serialise for storage."""
        return json.dumps({"h": self.handle, "v": self.values}, separators=(",", ":"))

    @classmethod
    def loads(cls, blob: str | bytes) -> Record:
        """Deserialise from storage."""
        raw = json.loads(blob)
        return cls(handle=raw["h"], values=raw["v"])


Change = Callable[[Record | None], Record | None]
"""Given the current record (or None), return the new record, or None to delete it."""


@runtime_checkable
class Store(Protocol):
    """Where a node keeps its records: durable before any write is acknowledged."""

    def get(self, key: str) -> Record | None:
        """The record stored under a case-folded key, or None."""
        ...

    def get_many(self, keys: list[str]) -> list[Record | None]:
        """Several records in one round trip, in the order asked."""
        ...

    def mutate(self, key: str, change: Change) -> Record | None:
        """Atomically read, change and write one record; an exception leaves it untouched."""
        ...

    def put_many(self, records: Iterable[Record]) -> None:
        """Write many whole records (seed and batch); each one is all-or-nothing."""
        ...

    def delete(self, key: str) -> bool:
        """Remove a record; False if there was none."""
        ...

    def list_handles(
        self, prefix: str, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[str]]:
        """Total count and one page of handles under exactly this prefix, sorted."""
        ...

    def count(self) -> int:
        """Number of records stored."""
        ...

    def get_meta(self, name: str) -> str | None:
        """A node-level setting kept with the data (e.g. seed state)."""
        ...

    def set_meta(self, name: str, value: str) -> None:
        """Keep a node-level setting with the data."""
        ...

    def ping(self) -> bool:
        """True if the back end answers."""
        ...

    def clear(self) -> None:
        """Remove every record and setting of this node."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(kind: str, *, namespace: str, data_dir: Path, redis_url: str | None = None) -> Store:
    """Open the configured back end for one node."""
    if kind == "redis":
        from idcore.redis_store import RedisStore

        if not redis_url:
            raise ValueError("store 'redis' needs IDR_REDIS_URL, e.g. redis://127.0.0.1:6379/0")
        return RedisStore(redis_url, namespace=namespace)
    if kind == "sqlite":
        from idcore.sqlite_store import SQLiteStore

        return SQLiteStore(Path(data_dir) / f"{namespace}.sqlite3")
    raise ValueError(f"unknown store {kind!r}: choose 'sqlite' or 'redis'")
