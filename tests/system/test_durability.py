"""SIGKILL during batch registration: every acknowledged identifier survives, none is half-written.

A real furniture node (the launcher, free ports) takes `POST /api/batch/handles` from
three writers at once; it is SIGKILLed mid-load, with batches in flight, and started
again on the same data. On SQLite (WAL, synchronous=FULL) and on Redis (AOF with
`IDR_REDIS_APPENDFSYNC=always`; Redis itself is SIGKILLed too and replays its AOF).
Every item the node acknowledged must resolve with all its values, and every record
found under the test's prefix must be whole: all the values of its item, or absent.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from clients.launcher import Hierarchy
from idcore.identifier import fold
from idcore.redis_store import RedisStore
from idcore.sqlite_store import SQLiteStore
from idcore.store import Store
from tests.support.hierarchy import topology_on_free_ports
from tests.support.redis_server import RedisServer, redis_available

NODE = "furniture"
PREFIX = "88.168.1"
ENTERPRISE = "Basic " + base64.b64encode(b"300%3A88.168.1/ADMIN:demo-88.168.1-secret").decode()
WRITERS = 3
BATCH = 100
LOAD = 1.5

pytestmark = pytest.mark.timeout(90)


def _item(handle: str) -> dict[str, Any]:
    return {
        "handle": handle,
        "values": [
            {"index": 1, "type": "URL", "data": f"https://example.com/t/{handle}"},
            {"index": 2000, "type": "name", "data": f"durability test item {handle} (demo)"},
            {"index": 2001, "type": "model", "data": "DUR-1"},
            {"index": 2002, "type": "batch", "data": handle.rsplit("-", 1)[0]},
        ],
    }


SENT_INDEXES = [1, 2000, 2001, 2002]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (it is SIGKILLed), AOF on, default everysec."""
    if not redis_available():
        if os.environ.get("IDR_REQUIRE_REDIS") == "1":
            pytest.fail("IDR_REQUIRE_REDIS=1 but redis-server is not installed", pytrace=False)
        pytest.skip("redis-server is not installed")
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_sigkill_during_batch_registration(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server: RedisServer | None = request.getfixturevalue("own_redis") if kind == "redis" else None
    hierarchy = Hierarchy(
        topology=topology_on_free_ports([NODE]),
        data_dir=tmp_path / "data",
        store=kind,
        redis_url=server.url if server else None,
        extra_env={"IDR_REDIS_APPENDFSYNC": "always"},
    )
    hierarchy.start(timeout=30)
    try:
        _kill_during_batches(hierarchy, server, tmp_path)
    finally:
        hierarchy.stop()


def _kill_during_batches(hierarchy: Hierarchy, server: RedisServer | None, tmp_path: Path) -> None:
    url = hierarchy.nodes[NODE].url
    if server is not None:
        probe = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            # The node asked for fsync at every write: acknowledged means on disk.
            assert probe.config_get("appendfsync")["appendfsync"] == "always"
        finally:
            probe.close()
    acked: set[str] = set()
    sent: dict[str, list[str]] = {}  # batch id -> its handles (acknowledged or in flight)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def writer(w: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            batch = f"DUR-{w}-{n:04d}"
            n += 1
            handles = [f"{PREFIX}/{batch}-{i:03d}" for i in range(BATCH)]
            with lock:
                sent[batch] = handles
            try:
                resp = session.post(
                    f"{url}/api/batch/handles",
                    data=json.dumps({"handles": [_item(h) for h in handles]}),
                    headers={"Authorization": ENTERPRISE, "Content-Type": "application/json"},
                    timeout=10,
                )
            except requests.RequestException:
                return  # the node died with this batch in flight: not acknowledged
            body = resp.json()
            if resp.status_code != 200 or body.get("failed"):
                with lock:
                    errors.append(f"{batch}: HTTP {resp.status_code} {str(body)[:300]}")
                return
            with lock:
                acked.update(r["handle"] for r in body["results"] if r["responseCode"] == 1)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(LOAD)
    hierarchy.kill(NODE)  # SIGKILL, batches in flight
    if server is not None:
        server.kill()  # and the Redis under it: only its AOF remains
    stop.set()
    for t in threads:
        t.join(15)
    assert not errors, errors[:3]
    assert len(acked) >= BATCH, f"only {len(acked)} identifiers acknowledged before the kill"
    in_flight = [b for b, hs in sent.items() if not set(hs) <= acked]

    if server is not None:
        server.start()
    hierarchy.restart(NODE, timeout=30)

    # Every acknowledged identifier resolves, with every value it was sent.
    session = requests.Session()
    for handle in sorted(acked)[:: max(1, len(acked) // 200)]:
        resp = session.get(f"{url}/api/handles/{handle}", timeout=5)
        assert resp.status_code == 200, (handle, resp.text[:200])
        indexes = {v["index"] for v in resp.json()["values"]}
        assert set(SENT_INDEXES) <= indexes, (handle, indexes)
    store = _open(hierarchy, server, tmp_path)
    try:
        found = _whole_records(store)
    finally:
        store.close()
    lost = acked - set(found)
    assert not lost, f"{len(lost)} acknowledged identifiers lost, e.g. {sorted(lost)[:3]}"
    # A batch is one prefix, written in one transaction: in flight means all or nothing.
    for batch in in_flight:
        present = [h for h in sent[batch] if h in found]
        assert len(present) in (0, BATCH), (batch, len(present))
    print(
        f"durability ({hierarchy.store}): {len(acked)} acknowledged, all present; "
        f"{len(in_flight)} batches in flight at the kill, "
        f"{sum(1 for b in in_flight if sent[b][0] in found)} of them committed whole"
    )


def _open(hierarchy: Hierarchy, server: RedisServer | None, tmp_path: Path) -> Store:
    if server is not None:
        return RedisStore(server.url, namespace=NODE)
    return SQLiteStore(tmp_path / "data" / f"{NODE}.sqlite3")


def _whole_records(store: Store) -> set[str]:
    """Handles of the test's records, each checked to hold every value it was sent."""
    total, handles = store.list_handles(PREFIX)
    assert total == len(handles)
    ours = [h for h in handles if h.split("/", 1)[1].startswith("DUR-")]
    records = store.get_many([fold(h) for h in ours])
    for handle, record in zip(ours, records, strict=True):
        assert record is not None, f"{handle} is indexed but has no record"
        by_index = {v["index"]: v for v in record.values}
        assert set(SENT_INDEXES) <= set(by_index), (handle, sorted(by_index))
        expected = _item(handle)["values"]
        for value in expected:
            assert by_index[value["index"]]["data"]["value"] == value["data"], (handle, value)
    return set(ours)
