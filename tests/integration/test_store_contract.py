"""One contract for every Store back end: SQLite and Redis must behave the same."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.crc import key_slot

from idcore import jws
from idcore.identifier import fold
from idcore.record_codec import FORMAT_DEFLATE_1
from idcore.redis_store import RedisStore
from idcore.signing import digests
from idcore.sqlite_store import MMAP_BYTES, SQLiteStore
from idcore.store import LOG_ID_META, LogEntry, LogMismatch, Record, Store, final_state
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

    def make(name: str = "node", changelog: bool = False) -> Store:
        store: Store
        if backend == "redis":
            namespace = names.setdefault(name, _namespace())
            store = RedisStore(url, namespace=namespace, changelog=changelog)
        else:
            store = SQLiteStore(tmp_path / f"{name}.sqlite3", changelog=changelog)
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


def test_restore_holds_exactly_the_records_and_settings_given(store: Store) -> None:
    store.put_many([_record("88.168.1/KEEP", "old"), _record("88.168.2/GONE")])
    store.set_meta("seed", "v1")
    store.set_meta("other", "x")
    store.restore([_record("88.168.1/Keep", "new"), _record("88.168.3/NEW")], {"seed": "v2"})
    assert store.count() == 2
    assert store.get("88.168.2/GONE") is None
    kept = store.get("88.168.1/KEEP")
    assert kept is not None and kept.values[0]["data"]["value"] == "new"
    assert store.list_handles("88.168.1") == (1, ["88.168.1/Keep"])
    assert store.list_handles("88.168.2") == (0, [])
    assert store.list_handles("88.168.3") == (1, ["88.168.3/NEW"])
    assert (store.get_meta("seed"), store.get_meta("other")) == ("v2", None)


def test_restore_never_shows_a_reader_a_kept_record_missing(store: Store) -> None:
    seed = [_record(f"88.168.1/R{i}") for i in range(200)]
    store.put_many(seed)
    missing: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for key in ("88.168.1/R0", "88.168.1/R199"):
                if store.get(key) is None:
                    missing.append(key)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(10):
            store.put_many([_record(f"88.168.1/EXTRA{round_}")])
            store.restore(seed, {})
    finally:
        done.set()
        thread.join(timeout=30)
    assert missing == []
    assert store.count() == 200


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


# --- mutate_many -------------------------------------------------------------


def test_mutate_many_reads_current_and_writes_what_change_returns(store: Store) -> None:
    store.put_many([_record("88.168.1/A", "old")])
    seen: dict[str, Record | None] = {}

    def change(keys: list[str], current: list[Record | None]) -> list[Record]:
        seen.update(zip(keys, current, strict=True))
        return [_record(k, "new") for k, c in zip(keys, current, strict=True) if k != "88.168.2/C"]

    store.mutate_many(["88.168.1/A", "88.168.1/B", "88.168.2/C", "88.168.1/A"], change)
    assert seen == {
        "88.168.1/A": _record("88.168.1/A", "old"),
        "88.168.1/B": None,
        "88.168.2/C": None,
    }
    assert store.get("88.168.1/A") == _record("88.168.1/A", "new")
    assert store.get("88.168.1/B") == _record("88.168.1/B", "new")
    assert store.get("88.168.2/C") is None
    assert store.list_handles("88.168.1") == (2, ["88.168.1/A", "88.168.1/B"])


def test_mutate_many_refuses_a_record_outside_the_keys(store: Store) -> None:
    with pytest.raises(ValueError, match="not among the keys"):
        store.mutate_many(["88.168.1/A"], lambda keys, current: [_record("88.168.1/OTHER")])
    assert store.count() == 0


# --- change log ----------------------------------------------------------------


@pytest.fixture
def logged(make_store: Any) -> Store:
    """A fresh store on the back end under test, with its change log on."""
    made: Store = make_store("logged", changelog=True)
    return made


def _log(store: Store) -> list[tuple[int, str, str | None]]:
    """(seq, key, first value's text or None) of every logged change."""
    out = []
    for entry in store.changes_after(0, 10_000):
        text = None if entry.record is None else entry.record.values[0]["data"]["value"]
        out.append((entry.seq, entry.key, text))
    return out


def _contents(store: Store) -> dict[str, Record]:
    """Every record of a store, by key (through the public API)."""
    out: dict[str, Record] = {}
    for prefix in ("88.168.1", "88.168.2", "0.NA"):
        for handle in store.list_handles(prefix)[1]:
            record = store.get(fold(handle))
            assert record is not None
            out[fold(handle)] = record
    return out


def test_changelog_logs_every_write_in_order(logged: Store) -> None:
    assert logged.changelog is True
    assert (logged.last_seq(), logged.last_entry(), logged.changes_after(0, 10)) == (0, None, [])
    logged.mutate("88.168.1/A", lambda old: _record("88.168.1/a", "1"))
    logged.mutate("88.168.1/A", lambda old: _record("88.168.1/a", "2"))
    logged.put_many([_record("88.168.2/B", "3"), _record("0.NA/88.168.1", "4")])
    logged.mutate_many(["88.168.1/C"], lambda keys, current: [_record("88.168.1/C", "5")])
    logged.mutate("88.168.1/A", lambda old: None)
    assert logged.delete("88.168.2/B") is True
    assert _log(logged) == [
        (1, "88.168.1/A", "1"),
        (2, "88.168.1/A", "2"),
        (3, "88.168.2/B", "3"),
        (4, "0.NA/88.168.1", "4"),
        (5, "88.168.1/C", "5"),
        (6, "88.168.1/A", None),
        (7, "88.168.2/B", None),
    ]
    assert logged.last_seq() == 7
    last = logged.last_entry()
    assert last is not None and (last.seq, last.key, last.record) == (7, "88.168.2/B", None)
    # Only changes that happened are logged: no-ops and refused changes leave no entry.
    assert logged.delete("88.168.2/B") is False
    logged.mutate("88.168.1/NONE", lambda old: None)

    def boom(old: Record | None) -> Record | None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        logged.mutate("88.168.1/C", boom)
    logged.put_many([])
    assert logged.last_seq() == 7
    # The log replays into exactly the store's contents.
    state = {k: r for k, r in final_state(logged.changes_after(0, 100)).items() if r is not None}
    assert state == _contents(logged)


def test_changes_after_pages_through_the_log(logged: Store) -> None:
    logged.put_many(_record(f"88.168.1/H{i:02d}", str(i)) for i in range(10))
    assert [e.seq for e in logged.changes_after(0, 4)] == [1, 2, 3, 4]
    assert [e.seq for e in logged.changes_after(4, 4)] == [5, 6, 7, 8]
    assert [e.seq for e in logged.changes_after(8, 4)] == [9, 10]
    assert logged.changes_after(10, 4) == []
    assert logged.changes_after(3, 0) == []
    entry = logged.changes_after(2, 1)[0]
    assert entry.record == _record("88.168.1/H02", "2") and entry.key == "88.168.1/H02"
    assert entry.at > 0


def test_log_entry_wire_form_round_trips() -> None:
    entry = LogEntry(3, "88.168.1/A", _record("88.168.1/a", "v"), 1700000000.123456)
    assert LogEntry.from_json(entry.to_json()) == entry
    deletion = LogEntry(4, "88.168.1/A", None, 1700000001.5)
    assert LogEntry.from_json(deletion.to_json()) == deletion
    with pytest.raises(ValueError):
        LogEntry.from_json({**entry.to_json(), "key": "88.168.1/OTHER"})


def test_changelog_off_logs_nothing(store: Store) -> None:
    store.put_many([_record("88.168.1/A")])
    store.mutate("88.168.1/B", lambda old: _record("88.168.1/B"))
    assert (store.last_seq(), store.changes_after(0, 10)) == (0, [])
    with pytest.raises(LogMismatch):
        store.apply_changes("x", [LogEntry(1, "88.168.1/A", None, 1.0)])


def test_log_id_is_stable_until_clear(logged: Store) -> None:
    first = logged.log_id()
    logged.put_many([_record("88.168.1/A")])
    assert logged.log_id() == first
    assert logged.get_meta(LOG_ID_META) == first
    logged.clear()
    # A cleared store is a new history, numbered from 1 again.
    assert logged.last_seq() == 0
    logged.put_many([_record("88.168.1/B")])
    assert logged.log_id() != first
    assert _log(logged) == [(1, "88.168.1/B", "x")]


def test_log_position_moves_with_every_change(logged: Store) -> None:
    assert logged.log_position() == (None, 0)
    logged.put_many([_record("88.168.1/A")])
    first = logged.log_position()
    assert first == (logged.log_id(), 1)
    logged.mutate("88.168.1/A", lambda old: _record("88.168.1/A", "y"))
    assert logged.log_position() == (first[0], 2)
    logged.delete("88.168.1/A")
    assert logged.log_position() == (first[0], 3)
    logged.restore([_record("88.168.1/A"), _record("88.168.1/B"), _record("88.168.1/C")], {})
    moved = logged.log_position()
    assert moved[1] == 3 and moved[0] not in (None, first[0]), "same length, new history"


def test_restore_starts_a_new_history_holding_the_records(logged: Store) -> None:
    logged.put_many([_record("88.168.1/A"), _record("88.168.1/B")])
    first = logged.log_id()
    logged.restore([_record("88.168.1/B", "b")], {})
    assert logged.log_id() != first
    assert _log(logged) == [(1, "88.168.1/B", "b")]


def test_log_survives_reopening(make_store: Any) -> None:
    first: Store = make_store("node", changelog=True)
    first.put_many([_record("88.168.1/A", "a")])
    first.delete("88.168.1/A")
    history = first.log_id()
    first.close()
    again: Store = make_store("node", changelog=True)
    assert (again.log_id(), _log(again)) == (
        history,
        [(1, "88.168.1/A", "a"), (2, "88.168.1/A", None)],
    )
    again.put_many([_record("88.168.1/B", "b")])
    assert again.last_seq() == 3


def test_log_switched_on_over_existing_records_starts_with_them(make_store: Any) -> None:
    plain: Store = make_store("node")
    plain.put_many([_record("88.168.1/B", "b"), _record("0.NA/88.168.1", "p")])
    plain.close()
    logged: Store = make_store("node", changelog=True)
    assert sorted(e.key for e in logged.changes_after(0, 10)) == ["0.NA/88.168.1", "88.168.1/B"]
    assert logged.last_seq() == 2
    # Opening again does not log them twice.
    assert make_store("node", changelog=True).last_seq() == 2


def test_concurrent_writes_get_gapless_numbers(logged: Store) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                key = f"88.168.{n % 2 + 1}/W{n}-{i % 5}"
                logged.mutate(key, lambda old, k=key, i=i: _record(k, str(i)))
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not errors
    entries = logged.changes_after(0, 1000)
    assert [e.seq for e in entries] == list(range(1, 121))
    state = {k: r for k, r in final_state(entries).items() if r is not None}
    assert state == _contents(logged)


# --- following another store's log ------------------------------------------------


def _source_history(source: Store) -> None:
    source.put_many([_record("0.NA/88.168.1", "p1"), _record("88.168.1/A", "a1")])
    source.mutate("88.168.1/A", lambda old: _record("88.168.1/A", "a2"))
    source.put_many([_record("88.168.2/B", "b1")])
    source.delete("0.NA/88.168.1")
    source.mutate_many(["88.168.1/C"], lambda keys, cur: [_record("88.168.1/C", "c1")])


def test_apply_changes_mirrors_the_source(make_store: Any) -> None:
    source: Store = make_store("source", changelog=True)
    follower: Store = make_store("follower", changelog=True)
    _source_history(source)
    history = source.log_id()
    pos = 0
    while True:
        page = source.changes_after(pos, 2)
        if not page:
            break
        pos = follower.apply_changes(history, page)
    assert pos == source.last_seq() == follower.last_seq() == 6
    assert follower.log_id() == history
    assert _contents(follower) == _contents(source)
    assert follower.changes_after(0, 100) == source.changes_after(0, 100)
    assert follower.list_handles("88.168.1") == source.list_handles("88.168.1")


def test_apply_changes_is_idempotent(make_store: Any) -> None:
    source: Store = make_store("source", changelog=True)
    follower: Store = make_store("follower", changelog=True)
    _source_history(source)
    history, entries = source.log_id(), source.changes_after(0, 100)
    assert follower.apply_changes(history, entries[:4]) == 4
    # The same changes again, and an overlapping page: nothing is applied twice.
    assert follower.apply_changes(history, entries[:4]) == 4
    assert follower.apply_changes(history, entries[2:]) == 6
    assert follower.apply_changes(history, entries) == 6
    assert follower.apply_changes(history, []) == 6
    assert follower.changes_after(0, 100) == entries
    assert _contents(follower) == _contents(source)


def test_apply_changes_refuses_gaps_and_other_histories(make_store: Any) -> None:
    source: Store = make_store("source", changelog=True)
    follower: Store = make_store("follower", changelog=True)
    _source_history(source)
    history, entries = source.log_id(), source.changes_after(0, 100)
    with pytest.raises(LogMismatch, match="gap"):
        follower.apply_changes(history, entries[1:])
    assert (follower.last_seq(), follower.count()) == (0, 0)
    follower.apply_changes(history, entries[:2])
    with pytest.raises(LogMismatch, match="gap"):
        follower.apply_changes(history, entries[3:])
    with pytest.raises(LogMismatch, match="history"):
        follower.apply_changes("another-history", entries[2:])
    assert follower.last_seq() == 2
    # A follower with its own writes (its own history) refuses a source's changes.
    own: Store = make_store("own", changelog=True)
    own.put_many([_record("88.168.1/MINE")])
    with pytest.raises(LogMismatch, match="history"):
        own.apply_changes(history, entries)


def test_a_new_history_id_fences_the_old_source(make_store: Any) -> None:
    """Promotion: once the follower has its own history, late changes of the old one bounce."""
    source: Store = make_store("source", changelog=True)
    follower: Store = make_store("follower", changelog=True)
    _source_history(source)
    history, entries = source.log_id(), source.changes_after(0, 100)
    follower.apply_changes(history, entries[:3])
    follower.set_meta_many({LOG_ID_META: "promoted", "role": "primary"})
    with pytest.raises(LogMismatch):
        follower.apply_changes(history, entries[3:])
    # The promoted store numbers its own writes on from the changes it holds.
    follower.put_many([_record("88.168.1/NEW", "n")])
    assert [e.seq for e in follower.changes_after(0, 100)] == [1, 2, 3, 4]
    assert (follower.get_meta("role"), follower.log_id()) == ("primary", "promoted")


def test_replace_log_makes_an_exact_copy(make_store: Any) -> None:
    source: Store = make_store("source", changelog=True)
    follower: Store = make_store("follower", changelog=True)
    _source_history(source)
    follower.put_many([_record("88.168.1/STALE"), _record("88.168.1/A", "diverged")])
    follower.set_meta("seed", "kept")
    follower.replace_log(source.log_id(), source.changes_after(0, 100))
    assert _contents(follower) == _contents(source)
    assert follower.get("88.168.1/STALE") is None
    assert follower.changes_after(0, 100) == source.changes_after(0, 100)
    assert follower.log_id() == source.log_id()
    assert follower.get_meta("seed") == "kept"
    # It follows on from there.
    source.put_many([_record("88.168.2/D", "d")])
    assert follower.apply_changes(source.log_id(), source.changes_after(6, 10)) == 7
    assert _contents(follower) == _contents(source)
    with pytest.raises(LogMismatch, match="gap"):
        follower.replace_log("x", source.changes_after(1, 100))


def test_set_meta_many(store: Store) -> None:
    store.set_meta("a", "0")
    store.set_meta_many({"a": "1", "b": "2"})
    store.set_meta_many({})
    assert (store.get_meta("a"), store.get_meta("b")) == ("1", "2")


def test_durability_is_reported(store: Store, backend: str) -> None:
    info = store.durability()
    assert info["backend"] == backend
    if backend == "sqlite":
        assert (info["journal_mode"], info["synchronous"]) == ("wal", "full")
    else:
        assert info["appendonly"] == "yes"


def test_sqlite_connections_read_through_a_memory_map(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "mapped.sqlite3")
    store.put_many([_record("88.168.1/Mapped-1")])
    sizes: list[int] = []

    def read() -> None:
        # Each thread's connection: the map is set where it is opened.
        assert store.get("88.168.1/MAPPED-1") is not None
        sizes.append(store._conn().execute("PRAGMA mmap_size").fetchone()[0])

    read()
    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    assert sizes == [MMAP_BYTES, MMAP_BYTES]


@pytest.mark.redis
def test_redis_changelog_key_layout(redis_url: str) -> None:
    store = RedisStore(redis_url, namespace="ns2", changelog=True)
    store.put_many([_record("88.168.1/Ward-1")])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = set(client.scan_iter(match="idr:*"))
    finally:
        client.close()
        store.close()
    assert keys == {
        "idr:{ns2:88.168.1}:r:88.168.1/WARD-1",
        "idr:{ns2:88.168.1}:idx",
        "idr:{ns2}:log",
        "idr:{ns2}:meta",
    }


@pytest.mark.redis
def test_redis_store_turns_aof_on_and_never_weakens_it(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.config_set("appendfsync", "no")
        RedisStore(redis_url, "ns", appendfsync="everysec").close()
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        RedisStore(redis_url, "ns", appendfsync="always").close()
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        RedisStore(redis_url, "ns", appendfsync="everysec").close()
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        RedisStore(redis_url, "ns", appendfsync="server").close()
        assert client.config_get("appendonly")["appendonly"] == "yes"
    finally:
        client.config_set("appendfsync", "everysec")
        client.close()


def test_replace_log_never_overwrites_a_promoted_store(make_store: Any) -> None:
    source: Store = make_store("source", changelog=True)
    follower: Store = make_store("follower", changelog=True)
    _source_history(source)
    entries = source.changes_after(0, 100)
    follower.apply_changes(source.log_id(), entries[:2])
    follower.set_meta(LOG_ID_META, "promoted")
    follower.put_many([_record("88.168.1/MINE")])
    with pytest.raises(LogMismatch, match="promoted"):
        follower.replace_log("other", entries, expected=source.log_id())
    assert follower.get("88.168.1/MINE") is not None
    follower.replace_log("other", entries, expected="promoted")
    assert follower.get("88.168.1/MINE") is None


# --- Redis record format (compact blobs; plain JSON of older stores still read) ---------------

_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _signed_record(handle: str) -> Record:
    """A record as a node stores it: 20 template items, a trace edge and a signature over them."""
    values = [
        {**v, "ttl": 86400, "timestamp": "2026-01-02T03:04:05Z"}
        for v in (
            _values(f"https://example.test/{handle}")
            + [
                {"index": 2000 + i, "type": f"item_{i}", "data": {"format": "string", "value": t}}
                for i, t in enumerate(f"第{i}项 item number {i} of the template" for i in range(20))
            ]
            + [{"index": 3000, "type": "TRACE.BATCH", "data": "88.168.1/BATCH-1"}]
        )
    ]
    payload = {"iss": "furniture", "sub": handle, "iat": 7, "prefix": "88.168"}
    payload["digests"] = digests(values)
    token = jws.sign(payload, _KEY, "k1")
    signature = {"index": 400, "type": "HS_SIGNATURE", "data": {"format": "string", "value": token}}
    return Record(handle, sorted([*values, signature], key=lambda v: int(v["index"])))


def _redis_names(store: RedisStore, handle: str) -> tuple[str, str, str]:
    """A handle's record key, prefix index and index member (idcore/redis_store.py layout)."""
    key = fold(handle)
    tag = f"idr:{{{store.namespace}:{key.split('/', 1)[0]}}}"
    return f"{tag}:r:{key}", f"{tag}:idx", f"{key}\x00{handle}"


def _write_plain_json(store: RedisStore, record: Record) -> None:
    """Store a record as the old format did: its plain JSON, and its index entry."""
    name, index, member = _redis_names(store, record.handle)
    body = {"h": record.handle, "v": record.values}
    store._redis.set(name, json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    store._redis.zadd(index, {member: 0})


def _format_byte(store: RedisStore, handle: str) -> str:
    """The first byte of a stored record (the store's client reads it as a one-char str)."""
    return str(store._redis.getrange(_redis_names(store, handle)[0], 0, 0))


def test_redis_stores_records_compactly(store: Store, backend: str) -> None:
    if backend != "redis":
        pytest.skip("the Redis record format")
    assert isinstance(store, RedisStore)
    record = _signed_record("88.168.1/Compact-1")
    store.put_many([record])
    name = _redis_names(store, record.handle)[0]
    assert _format_byte(store, record.handle) == chr(FORMAT_DEFLATE_1)
    stored, plain = int(store._redis.strlen(name)), len(record.dumps().encode())
    assert stored * 4 < plain, (stored, plain)
    back = store.get(record.key)
    assert back == record
    token = next(v for v in back.values if v["type"] == "HS_SIGNATURE")["data"]["value"]
    assert jws.verify(token, _KEY.public_key())["sub"] == record.handle


def test_redis_reads_records_stored_as_plain_json(store: Store, backend: str) -> None:
    if backend != "redis":
        pytest.skip("the Redis record format")
    assert isinstance(store, RedisStore)
    old = [_signed_record("88.168.1/Old-1"), _record("88.168.1/Old-2", "旧 old")]
    for record in old:
        _write_plain_json(store, record)
    assert store.get(old[0].key) == old[0]
    assert store.get_many([r.key for r in old]) == old
    assert store.list_handles("88.168.1") == (2, ["88.168.1/Old-1", "88.168.1/Old-2"])
    assert store.count() == 2
    seen: dict[str, Record | None] = {}

    def change_many(keys: list[str], current: list[Record | None]) -> list[Record]:
        seen.update(zip(keys, current, strict=True))
        return []

    store.mutate_many([old[0].key], change_many)
    assert seen == {old[0].key: old[0]}
    new = _record("88.168.1/Old-2", "new")
    assert store.mutate(old[1].key, lambda current: new if current == old[1] else None) == new
    # Written again, a record is in the compact format; the untouched one is as it was.
    assert _format_byte(store, new.handle) == chr(FORMAT_DEFLATE_1)
    assert _format_byte(store, old[0].handle) == "{"
    assert store.get_many([r.key for r in old]) == [old[0], new]


def test_redis_change_log_starts_with_records_stored_as_plain_json(
    make_store: Any, backend: str
) -> None:
    if backend != "redis":
        pytest.skip("the Redis record format")
    plain: Store = make_store("node")
    assert isinstance(plain, RedisStore)
    record = _signed_record("88.168.1/Old-1")
    _write_plain_json(plain, record)
    logged: Store = make_store("node", changelog=True)
    assert [(e.key, e.record) for e in logged.changes_after(0, 10)] == [(record.key, record)]
