"""Plain resolves on Redis answered from the blob's answer index: the full path's bytes.

The full path, as it was before the index: the blob read by the format 1 reader that
predates it, the record's public values encoded by `values_answer`. Every write path
of the Redis store (on one server and on a Redis Cluster) writes blobs that answer so,
and blobs written before the index (plain JSON, format 1 without it) still do.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any, cast

import pytest
from flask import Flask

from idcore.identifier import fold
from idcore.record_codec import DICTIONARY_1, envelope
from idcore.records import public_values
from idcore.redis_store import RedisStore
from idcore.store import LogEntry, Record
from idcore.web import values_answer
from tests.integration.conftest import Node
from tests.integration.test_store_contract import _redis_names, _signed_record
from tests.support.redis_cluster import RedisClusterServer
from tests.unit.test_record_answer_index import PRIVATE, _general, _read_as_before, _text

pytestmark = pytest.mark.redis


def _raw_blob(store: RedisStore, handle: str) -> bytes | None:
    """The bytes stored for a handle (the store's client reads them as escaped text)."""
    text = cast("str | None", store._redis.get(_redis_names(store, handle)[0]))
    return None if text is None else text.encode("utf-8", "surrogateescape")


def _indexed(blob: bytes) -> bool:
    """True if a blob carries the answer index."""
    return blob[:1] == b"\x01" and _text(blob).startswith(b'{"f":[')


def _read_before(blob: bytes) -> Record:
    """A blob as the reader before the answer index reads it (plain JSON too)."""
    return Record.loads(blob) if blob[:1] == b"{" else _read_as_before(blob)


def _full_answer(store: RedisStore, handle: str, text: str) -> bytes:
    """The answer the full path gives for `text` (the handle as sent)."""
    blob = _raw_blob(store, handle)
    assert blob is not None
    with Flask(__name__).test_request_context():
        return values_answer(text, public_values(_read_before(blob).values)).get_data()


def _private_record(handle: str) -> Record:
    """A record with a value an anonymous reader may not see."""
    url = {"index": 1, "type": "URL", "data": "https://example.test/p"}
    secret = {"index": 300, "type": "HS_SECKEY", "data": "hashed", **PRIVATE}
    return Record(handle, [url, secret])


def _records(tag: str) -> list[Record]:
    """Signed, plain and private records under two prefixes (two hash slots)."""
    return [
        _signed_record(f"88.168.1/{tag}-Signed"),
        _signed_record(f"88.168.2/{tag}-Signed"),
        Record(f"88.168.1/{tag}-Plain", [{"index": 1, "type": "URL", "data": "衣柜 x"}]),
        _private_record(f"88.168.2/{tag}-Private"),
    ]


def _answers_as_the_full_path(store: RedisStore, records: list[Record]) -> None:
    """Each record reads back whole and answers from its index as the full path does."""
    for record in records:
        blob = _raw_blob(store, record.handle)
        assert blob is not None and _indexed(blob), record.handle
        assert _read_before(blob) == record == store.get(record.key)
        found, text = store.public_values_text(record.key)
        assert found and text == _general(record), record.handle


# -- stores on one server and on a cluster ----------------------------------------------------


@pytest.fixture(params=["server", "cluster"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL of a private Redis server or cluster, emptied after the test."""
    if request.param == "server":
        yield request.getfixturevalue("redis_url")
        return
    server: RedisClusterServer = request.getfixturevalue("redis_cluster")
    yield server.url
    server.flush()


@pytest.fixture
def store(url: str) -> Iterator[RedisStore]:
    """A fresh store on the server or the cluster."""
    made = RedisStore(url, namespace=f"t-{uuid.uuid4().hex[:12]}")
    yield made
    made.close()


def test_put_many_writes_blobs_that_answer(store: RedisStore) -> None:
    records = _records("Put")
    store.put_many(records)
    _answers_as_the_full_path(store, records)
    assert store.public_values_text("88.168.1/NONE") == (False, None)
    found, text = store.public_values_text(records[3].key)
    assert found and text is None, "a private value: the general path filters it"


def test_mutate_and_delete_keep_the_answer_with_the_record(store: RedisStore) -> None:
    first, renamed = _signed_record("88.168.1/M-1"), _signed_record("88.168.1/m-1")
    store.mutate(first.key, lambda old: first)
    _answers_as_the_full_path(store, [first])
    store.mutate(first.key, lambda old: renamed)
    _answers_as_the_full_path(store, [renamed])
    store.mutate(first.key, lambda old: _private_record("88.168.1/m-1"))
    assert store.public_values_text(first.key) == (True, None)
    store.mutate(first.key, lambda old: None)
    assert store.public_values_text(first.key) == (False, None)
    store.put_many([first])
    assert store.delete(first.key)
    assert store.public_values_text(first.key) == (False, None)


def test_mutate_many_writes_blobs_that_answer(store: RedisStore) -> None:
    records = _records("Many")
    store.put_many([Record(r.handle, []) for r in records])
    by_key = {r.key: r for r in records}

    def change(keys: list[str], current: list[Record | None]) -> list[Record]:
        return [by_key[k] for k in keys]

    store.mutate_many(list(by_key), change)
    _answers_as_the_full_path(store, records)


def test_restore_writes_blobs_that_answer_and_drops_the_rest(store: RedisStore) -> None:
    old, new = _records("Old"), _records("New")
    store.put_many(old)
    store.restore(new, {"seed": "x"})
    _answers_as_the_full_path(store, new)
    for record in old:
        assert store.public_values_text(record.key) == (False, None)


def test_replication_writes_blobs_that_answer(redis_url: str) -> None:
    # The change log runs on one server only (a cluster refuses it), so no cluster here.
    follower = RedisStore(redis_url, namespace=f"t-{uuid.uuid4().hex[:12]}", changelog=True)
    try:
        records = _records("Log")
        entries = [LogEntry(i + 1, r.key, r, 1.0) for i, r in enumerate(records)]
        follower.apply_changes("history-1", entries)
        _answers_as_the_full_path(follower, records)
        gone = LogEntry(len(entries) + 1, records[0].key, None, 2.0)
        follower.apply_changes("history-1", [gone])
        assert follower.public_values_text(records[0].key) == (False, None)
        again = _records("Resync")
        follower.replace_log("history-2", [LogEntry(1, again[0].key, again[0], 3.0)])
        _answers_as_the_full_path(follower, again[:1])
        assert follower.public_values_text(records[1].key) == (False, None)
    finally:
        follower.close()


# -- blobs from before the index ---------------------------------------------------------------


def _write_old(store: RedisStore, record: Record, *, plain: bool) -> None:
    """Store a record as an older version did: plain JSON, or format 1 without the index."""
    name, index, member = _redis_names(store, record.handle)
    if plain:
        blob = json.dumps({"h": record.handle, "v": record.values}, ensure_ascii=False).encode()
    else:
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_1)
        blob = b"\x01" + deflate.compress(envelope(record)) + deflate.flush()
    store._redis.set(name, blob)
    store._redis.zadd(index, {member: 0})


@pytest.mark.parametrize("plain", [True, False], ids=["plain json", "format 1 without index"])
def test_blobs_from_before_the_index_answer_the_full_way(redis_url: str, plain: bool) -> None:
    store = RedisStore(redis_url, namespace=f"t-{uuid.uuid4().hex[:12]}")
    try:
        records = _records("Old")
        for record in records:
            _write_old(store, record, plain=plain)
        for record in records:
            blob = _raw_blob(store, record.handle)
            assert blob is not None and not _indexed(blob)
            assert store.get(record.key) == record
            assert store.public_values_text(record.key) == (True, _general(record))
        store.put_many(records)  # written again: with the index
        _answers_as_the_full_path(store, records)
    finally:
        store.close()


# -- a node ------------------------------------------------------------------------------------


def _handles(node: Node) -> list[str]:
    handles: list[str] = []
    for prefix in ("88.168.1", "88.168.2"):
        handles += node.get(f"/api/handles?prefix={prefix}").get_json()["handles"]
    return [*handles, "88.168/ADMIN"]


def test_every_demo_record_answers_byte_for_byte_as_the_full_path(make_node: Any) -> None:
    redis_node: Node = make_node("furniture", "redis")
    sqlite_node: Node = make_node("furniture", "sqlite")
    store = cast("RedisStore", redis_node.store)
    handles = _handles(redis_node)
    assert len(handles) > 20
    fast = 0
    for handle in handles:
        for text in (handle, handle.lower()):
            resp = redis_node.get(text)
            assert resp.status_code == 200
            assert resp.get_data() == _full_answer(store, handle, text), text
            assert resp.get_data() == sqlite_node.get(text).get_data(), text
        found, stored = store.public_values_text(fold(handle))
        assert found
        fast += stored is not None
    assert fast >= len(handles) - 3, "all but the ADMIN records answer from the index"
    body = redis_node.get("88.168.1/ADMIN").get_json()
    assert "HS_SECKEY" not in json.dumps(body)


def test_a_record_written_through_the_api_answers_from_its_index(make_node: Any) -> None:
    node: Node = make_node("furniture", "redis")
    store = cast("RedisStore", node.store)
    value = {"index": 2000, "type": "name", "data": {"format": "string", "value": "衣柜 API"}}
    assert node.put("88.168.1/Api-1", {"values": [value]}).status_code == 201
    found, text = store.public_values_text("88.168.1/API-1")
    assert found and text is not None
    resp = node.get("88.168.1/api-1")
    assert resp.get_data() == _full_answer(store, "88.168.1/Api-1", "88.168.1/api-1")
    assert {"name", "HS_SIGNATURE"} <= {v["type"] for v in resp.get_json()["values"]}
