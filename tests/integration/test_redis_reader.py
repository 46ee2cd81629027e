"""Single-key reads on Redis go over a connection each thread keeps (RedisStore._reader)."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator

import pytest

from idcore import redis_store
from idcore.redis_store import RedisStore
from idcore.store import Record

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    """A store on the private server, in a namespace of its own."""
    made = RedisStore(redis_url, namespace=f"t-{uuid.uuid4().hex[:12]}")
    value = {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://a.example"}}
    made.put_many([Record("88.168.1/R1", [value])])
    yield made
    made.close()


def _in_thread(store: RedisStore) -> tuple[int, Record | None]:
    """The connection a fresh thread reads on, and what it read."""
    seen: list[tuple[int, Record | None]] = []

    def read() -> None:
        seen.append((id(store._reader().connection), store.get("88.168.1/R1")))

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    return seen[0]


def test_each_thread_reads_on_its_own_connection(store: RedisStore) -> None:
    mine = store._reader()
    assert store._reader() is mine  # kept for the thread's life
    assert mine.connection is not None
    other, record = _in_thread(store)
    assert other != id(mine.connection)
    assert record is not None and record.values[0]["data"]["value"] == "https://a.example"
    assert store.get("88.168.1/R1") == record
    assert store.public_values_text("88.168.1/R1")[0] is True


def test_a_forked_process_does_not_share_the_parent_s_connection(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = store._reader()
    monkeypatch.setattr(redis_store.os, "getpid", lambda: -1)  # as in a gunicorn worker
    child = store._reader()
    assert child is not parent and child.connection is not parent.connection
    assert store.get("88.168.1/R1") is not None


def test_connections_of_finished_threads_go_back_to_the_pool(store: RedisStore) -> None:
    for _ in range(30):
        _in_thread(store)
    gc.collect()
    pool = store._redis.connection_pool
    in_use = len(pool._in_use_connections)  # type: ignore[attr-defined]
    assert in_use <= 2, f"{in_use} connections still held after their threads ended"
