"""One contract for every Store back end: SQLite and Redis must behave the same."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from idcore.identifier import fold
from idcore.redis_store import RedisStore
from idcore.sqlite_store import SQLiteStore
from idcore.store import Record, Store
from tests.support.redis_server import _free_port


def _values(text: str) -> list[dict[str, Any]]:
    return [{"index": 1, "type": "URL", "data": {"format": "string", "value": text}}]


def _record(handle: str, text: str = "x") -> Record:
    return Record(handle=handle, values=_values(text))


def _namespace() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the back end under test."""
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory of stores on the back end under test; same name → same data."""
    opened: list[Store] = []
    url = request.getfixturevalue("redis_url") if backend == "redis" else ""
    names: dict[str, str] = {}

    def make(name: str = "node") -> Store:
        store: Store
        if backend == "redis":
            store = RedisStore(url, namespace=names.setdefault(name, _namespace()))
        else:
            store = SQLiteStore(tmp_path / f"{name}.sqlite3")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Any) -> Store:
    """A fresh, empty store on the back end under test."""
    made: Store = make_store()
    return made


# --- get / mutate ------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("88.168.1/NOPE") is None


def test_store_satisfies_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_mutate_creates_replaces_and_deletes(store: Store) -> None:
    key = "88.168.1/WARD-1"
    created = store.mutate(key, lambda old: _record("88.168.1/ward-1", "a") if old is None else old)
    assert created == _record("88.168.1/ward-1", "a")
    assert store.get(key) == created

    def replace(old: Record | None) -> Record:
        assert old is not None and old.values == _values("a")
        return _record(old.handle, "b")

    assert store.mutate(key, replace) == _record("88.168.1/ward-1", "b")
    assert store.get(key) == _record("88.168.1/ward-1", "b")

    assert store.mutate(key, lambda old: None) is None
    assert store.get(key) is None
    assert store.count() == 0
    assert store.list_handles("88.168.1") == (0, [])


def test_mutate_delete_of_missing_record_is_harmless(store: Store) -> None:
    assert store.mutate("88.168.1/NONE", lambda old: None) is None
    assert store.count() == 0


def test_mutate_that_raises_leaves_record_untouched(store: Store) -> None:
    key = "88.168.1/WARD-1"
    store.mutate(key, lambda old: _record("88.168.1/Ward-1", "original"))
    before = store.get(key)
    assert before is not None

    def boom(old: Record | None) -> Record | None:
        raise RuntimeError("validation failed")

    with pytest.raises(RuntimeError, match="validation failed"):
        store.mutate(key, boom)
    after = store.get(key)
    assert after is not None and after.dumps() == before.dumps()

    with pytest.raises(RuntimeError):
        store.mutate("88.168.1/NEW", boom)
    assert store.get("88.168.1/NEW") is None
    assert store.list_handles("88.168.1") == (1, ["88.168.1/Ward-1"])

    # The store is still usable after the failed change.
    store.mutate(key, lambda old: _record("88.168.1/Ward-1", "next"))
    assert store.get(key) == _record("88.168.1/Ward-1", "next")


def test_new_spelling_of_same_key_replaces_old(store: Store) -> None:
    store.mutate("88.168.1/WARD-1", lambda old: _record("88.168.1/ward-1"))
    store.mutate("88.168.1/WARD-1", lambda old: _record("88.168.1/Ward-1"))
    store.put_many([_record("88.168.1/WARD-1", "seed")])
    assert store.list_handles("88.168.1") == (1, ["88.168.1/WARD-1"])
    assert store.count() == 1
    assert store.get("88.168.1/WARD-1") == _record("88.168.1/WARD-1", "seed")


def test_keys_are_case_folded(store: Store) -> None:
    store.put_many([_record("88.168.1/ward-1"), _record("0.na/88.168.1", "prefix")])
    assert store.get("88.168.1/WARD-1") == _record("88.168.1/ward-1")
    assert store.get(fold("0.na/88.168.1")) == _record("0.na/88.168.1", "prefix")
    assert store.get("0.NA/88.168.1") is not None
    # The store is given folded keys; an unfolded key is a different (absent) key.
    assert store.get("88.168.1/ward-1") is None


# --- batches -----------------------------------------------------------------


def test_get_many_keeps_order_and_reports_missing(store: Store) -> None:
    store.put_many([_record("88.168.1/A", "a"), _record("88.168.2/B", "b"), _record("0.NA/88.1")])
    keys = ["88.168.2/B", "88.168.1/MISSING", "88.168.1/A", "0.NA/88.1", "88.168.2/B"]
    got = store.get_many(keys)
    assert got == [
        _record("88.168.2/B", "b"),
        None,
        _record("88.168.1/A", "a"),
        _record("0.NA/88.1"),
        _record("88.168.2/B", "b"),
    ]
    assert store.get_many([]) == []


def test_put_many_writes_and_overwrites(store: Store) -> None:
    store.put_many([_record("88.168.1/A", "old")])
    store.put_many(_record(f"88.168.{i % 3}/H{i}", str(i)) for i in range(30))
    store.put_many([_record("88.168.1/a", "new")])
    store.put_many([])
    assert store.count() == 31
    assert store.get("88.168.1/A") == _record("88.168.1/a", "new")
    assert store.get("88.168.2/H29") == _record("88.168.2/H29", "29")


def test_delete(store: Store) -> None:
    store.put_many([_record("88.168.1/A"), _record("88.168.1/B")])
    assert store.delete("88.168.1/A") is True
    assert store.delete("88.168.1/A") is False
    assert store.get("88.168.1/A") is None
    assert store.list_handles("88.168.1") == (1, ["88.168.1/B"])
    assert store.count() == 1


# --- listing -----------------------------------------------------------------

_LISTED = [
    "88.168.1/b",
    "88.168.1/A",
    "88.168.1/a0",
    "88.168.1/a/b",
    "88.168.1/a-",
    "88.168.1/C",
    "88.168.1/é",
    "88.168.1/10",
    "88.168.1/9",
]
_NOT_LISTED = ["88.168.10/A", "88.168.10/B", "88.168.11/A", "0.NA/88.168.1", "88.168/A"]


def _expected() -> list[str]:
    return sorted(_LISTED, key=lambda h: fold(h).encode())


def test_list_handles_is_exactly_the_prefix_sorted_by_folded_key(store: Store) -> None:
    store.put_many(_record(h) for h in _LISTED + _NOT_LISTED)
    total, handles = store.list_handles("88.168.1")
    assert total == len(_LISTED)
    assert handles == _expected()
    assert store.list_handles("88.168.10") == (2, ["88.168.10/A", "88.168.10/B"])
    assert store.list_handles("0.na") == (1, ["0.NA/88.168.1"])
    assert store.list_handles("88.168.99") == (0, [])


def test_list_handles_pages(store: Store) -> None:
    store.put_many(_record(h) for h in _LISTED + _NOT_LISTED)
    expected = _expected()
    n = len(expected)
    assert store.list_handles("88.168.1", offset=0, limit=3) == (n, expected[:3])
    assert store.list_handles("88.168.1", offset=3, limit=3) == (n, expected[3:6])
    assert store.list_handles("88.168.1", offset=6, limit=100) == (n, expected[6:])
    assert store.list_handles("88.168.1", offset=4) == (n, expected[4:])
    assert store.list_handles("88.168.1", offset=n) == (n, [])
    assert store.list_handles("88.168.1", offset=n + 5, limit=2) == (n, [])
    assert store.list_handles("88.168.1", limit=0) == (n, [])
    pages = [store.list_handles("88.168.1", offset=o, limit=2)[1] for o in range(0, n, 2)]
    assert [h for page in pages for h in page] == expected


# --- count, meta, clear, ping ------------------------------------------------


def test_count(store: Store) -> None:
    assert store.count() == 0
    store.put_many(_record(h) for h in _LISTED + _NOT_LISTED)
    assert store.count() == len(_LISTED) + len(_NOT_LISTED)
    store.set_meta("seeded", "1")
    assert store.count() == len(_LISTED) + len(_NOT_LISTED)


def test_meta(store: Store) -> None:
    assert store.get_meta("seed") is None
    store.set_meta("seed", "v1")
    store.set_meta("other", "x")
    store.set_meta("seed", "v2")
    assert store.get_meta("seed") == "v2"
    assert store.get_meta("other") == "x"
    assert store.count() == 0


def test_clear_removes_records_and_meta(store: Store) -> None:
    store.put_many(_record(h) for h in _LISTED + _NOT_LISTED)
    store.set_meta("seed", "v1")
    store.clear()
    assert store.count() == 0
    assert store.get_meta("seed") is None
    assert store.get("88.168.1/A") is None
    assert store.list_handles("88.168.1") == (0, [])
    store.put_many([_record("88.168.1/A")])
    assert store.count() == 1


def test_ping(store: Store) -> None:
    assert store.ping() is True


# --- atomicity and durability ------------------------------------------------


def test_concurrent_mutates_are_atomic(store: Store) -> None:
    key = "88.168.1/COUNTER"
    threads, rounds = 8, 50
    errors: list[BaseException] = []

    def increment(old: Record | None) -> Record:
        n = 0 if old is None else int(old.values[0]["data"]["value"])
        return _record("88.168.1/counter", str(n + 1))

    def worker() -> None:
        try:
            for _ in range(rounds):
                store.mutate(key, increment)
        except BaseException as exc:  # reported below, with the count
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not errors
    final = store.get(key)
    assert final is not None
    assert final.values[0]["data"]["value"] == str(threads * rounds)
    assert store.list_handles("88.168.1") == (1, ["88.168.1/counter"])


def test_a_second_store_on_the_same_data_sees_the_writes(make_store: Any) -> None:
    first: Store = make_store("node")
    first.put_many([_record("88.168.1/A", "a")])
    first.mutate("88.168.1/B", lambda old: _record("88.168.1/B", "b"))
    first.set_meta("seed", "done")
    second: Store = make_store("node")
    assert second.get("88.168.1/A") == _record("88.168.1/A", "a")
    assert second.get("88.168.1/B") == _record("88.168.1/B", "b")
    assert second.get_meta("seed") == "done"
    assert second.count() == 2
    second.delete("88.168.1/A")
    assert first.get("88.168.1/A") is None


def test_separate_stores_are_isolated(make_store: Any) -> None:
    one: Store = make_store("one")
    two: Store = make_store("two")
    one.put_many([_record("88.168.1/A")])
    one.set_meta("seed", "one")
    two.put_many([_record("88.168.1/B")])
    assert two.get("88.168.1/A") is None
    assert two.get_meta("seed") is None
    assert two.list_handles("88.168.1") == (1, ["88.168.1/B"])
    assert (one.count(), two.count()) == (1, 1)
    two.clear()
    assert one.get("88.168.1/A") == _record("88.168.1/A")
    assert one.get_meta("seed") == "one"


# --- Redis specifics ---------------------------------------------------------


@pytest.mark.redis
def test_redis_keys_of_one_prefix_share_a_cluster_slot(redis_url: str) -> None:
    store = RedisStore(redis_url, namespace="ns1")
    store.put_many([_record("88.168.1/Ward-1"), _record("0.na/88.168.1")])
    store.set_meta("seed", "1")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = set(client.scan_iter(match="idr:*"))
    finally:
        client.close()
        store.close()
    assert keys == {
        "idr:{ns1:88.168.1}:r:88.168.1/WARD-1",
        "idr:{ns1:88.168.1}:idx",
        "idr:{ns1:0.NA}:r:0.NA/88.168.1",
        "idr:{ns1:0.NA}:idx",
        "idr:{ns1}:meta",
    }
    assert key_slot(b"idr:{ns1:88.168.1}:r:88.168.1/WARD-1") == key_slot(b"idr:{ns1:88.168.1}:idx")


@pytest.mark.redis
def test_redis_namespace_prefixing_another_is_isolated(redis_url: str) -> None:
    short, long = RedisStore(redis_url, "node"), RedisStore(redis_url, "node-2")
    try:
        long.put_many([_record("88.168.1/A")])
        assert short.count() == 0
        short.clear()
        assert long.count() == 1
    finally:
        short.close()
        long.close()


@pytest.mark.parametrize("namespace", ["", "a:b", "a{b}", "a*", "a b"])
def test_redis_rejects_namespaces_that_break_the_key_layout(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisStore("redis://127.0.0.1:1/0", namespace)


def test_redis_ping_is_false_when_unreachable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{_free_port()}/0", "ns")
    try:
        assert store.ping() is False
    finally:
        store.close()
