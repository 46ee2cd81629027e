"""The top-level prefix registry: cached between writes, never stale after one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idcore.identifier import parse_handle
from idcore.redis_store import RedisStore
from idcore.sqlite_store import SQLiteStore
from idcore.store import Record, Store
from resolver.delegation import Registry


def _site(base: str) -> dict[str, Any]:
    attrs = [{"name": "baseUrl", "value": base}]
    host, port = base.removeprefix("http://").split(":")
    server = {
        "serverId": 1,
        "address": host,
        "interfaces": [{"query": True, "admin": True, "protocol": "HTTP", "port": int(port)}],
    }
    value = {"version": 1, "primarySite": True, "attributes": attrs, "servers": [server]}
    return {"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": value}}


def _prefix(prefix: str, base: str) -> Record:
    return Record(handle=f"0.NA/{prefix}", values=[_site(base)])


class CountingStore:
    """A real store that counts its get_many calls."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_many(self, keys: list[str]) -> list[Record | None]:
        self.reads += 1
        return self.inner.get_many(keys)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def logged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with its change log on, as the top-level nodes keep one."""
    store: Store
    if request.param == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"), "reg", changelog=True)
    else:
        store = SQLiteStore(tmp_path / "top.sqlite3", changelog=True)
    yield store
    store.close()


def _home(registry: Registry, handle: str) -> str | None:
    found = registry.delegation(parse_handle(handle))
    return None if found is None else found.base_url


def test_an_unchanged_registry_is_read_from_the_store_once(logged: Store) -> None:
    logged.put_many([_prefix("88.168", "http://127.0.0.1:9168")])
    counting = CountingStore(logged)
    registry = Registry(counting, "88")
    for _ in range(5):
        assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9168"
    assert counting.reads == 1


def test_every_write_is_seen_at_once(logged: Store) -> None:
    registry = Registry(logged, "88")
    assert _home(registry, "88.168.1/WARD") is None
    logged.put_many([_prefix("88.168", "http://127.0.0.1:9168")])
    assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9168"
    logged.put_many([_prefix("88.168.1", "http://127.0.0.1:9200")])
    assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9200", "the longer prefix wins"
    assert logged.delete("0.NA/88.168.1")
    assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9168"


def test_a_reset_to_the_same_log_length_is_seen(logged: Store) -> None:
    logged.put_many([_prefix("88.168", "http://127.0.0.1:9168")])
    registry = Registry(logged, "88")
    assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9168"
    # Same number of changes, new history: the position differs by its log id.
    logged.restore([_prefix("88.168", "http://127.0.0.1:9999")], {})
    assert logged.last_seq() == 1
    assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9999"


def test_a_second_store_on_the_same_data_invalidates_too(logged: Store, tmp_path: Path) -> None:
    """Another worker process (its own connection) writes: this registry sees it."""
    registry = Registry(logged, "88")
    assert _home(registry, "88.169.1/BOARD") is None
    other: Store
    if isinstance(logged, RedisStore):
        url = logged._redis.connection_pool.connection_kwargs  # the same server
        other = RedisStore(f"redis://{url['host']}:{url['port']}", "reg", changelog=True)
    else:
        other = SQLiteStore(tmp_path / "top.sqlite3", changelog=True)
    try:
        other.put_many([_prefix("88.169", "http://127.0.0.1:9169")])
    finally:
        other.close()
    assert _home(registry, "88.169.1/BOARD") == "http://127.0.0.1:9169"


def test_a_pinned_registry_reads_the_log_position_once(logged: Store) -> None:
    """A trace's many lookups: one position read, and what was written after it not seen."""
    logged.put_many([_prefix("88.168", "http://127.0.0.1:9168")])
    counting = PositionCountingStore(logged)
    registry = Registry(counting, "88")
    lookup = registry.pinned()
    for handle in ("88.168.1/WARD", "88.168.2/BED", "88.169.1/BOARD", "88.168.1/WARD"):
        lookup(parse_handle(handle))
    assert counting.positions == 1
    # One read per prefix chain not read before (88.168.1, 88.168.2, 88.169.1); the
    # repeated identifier's prefix is answered from the lookups already made.
    assert counting.reads == 3
    found = lookup(parse_handle("88.168.1/WARD"))
    assert found is not None and found.base_url == "http://127.0.0.1:9168"
    logged.put_many([_prefix("88.168.1", "http://127.0.0.1:9200")])
    assert lookup(parse_handle("88.168.1/DESK")) is not None
    # The registry itself reads the position again and sees the write at once.
    assert _home(registry, "88.168.1/WARD") == "http://127.0.0.1:9200"
    again = registry.pinned()(parse_handle("88.168.1/WARD"))
    assert again is not None and again.base_url == "http://127.0.0.1:9200"
    assert counting.positions == 3


class PositionCountingStore(CountingStore):
    """A real store that counts its get_many calls and its log position reads."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.positions = 0

    def log_position(self) -> tuple[str | None, int]:
        self.positions += 1
        position: tuple[str | None, int] = self.inner.log_position()
        return position
