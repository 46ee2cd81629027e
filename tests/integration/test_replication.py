"""The Chengdu backup follows the Chongqing primary's change feed (both apps in-process).

The follower pulls the feed through `clients.transport.mount_apps`: both top-level apps
answer at their topology URLs (free ports, so nothing real is ever reached) without
sockets. Tests drive `poll_once()` by hand; one runs the real follower thread.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.test import TestResponse

from clients.transport import mount_apps
from idcore.identifier import fold
from idcore.settings import NodeSettings
from idcore.store import LOG_ID_META, LogEntry, Record, Store
from idcore.topology import Topology
from resolver.app import create_app
from resolver.follower import Follower
from resolver.replication import REPLICATION, ROLE_META, Replication
from resolver.replication_api import FOLLOWER
from tests.support.hierarchy import topology_on_free_ports

TOP_ADMIN = ("300:0.NA/88", "demo-cq-top-admin")
STORES = pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])


def _basic(identity: tuple[str, str]) -> dict[str, str]:
    user, secret = identity
    token = base64.b64encode(f"{user.replace(':', '%3A', 1)}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _prefix_body(text: str) -> str:
    return json.dumps(
        {"values": [{"index": 2, "type": "DESC", "data": {"format": "string", "value": text}}]}
    )


@dataclass
class Top:
    """One top-level node app in-process."""

    name: str
    app: Flask

    @property
    def repl(self) -> Replication:
        repl: Replication = self.app.extensions[REPLICATION]
        return repl

    @property
    def follower(self) -> Follower:
        follower: Follower = self.app.extensions[FOLLOWER]
        return follower

    @property
    def store(self) -> Store:
        return self.repl.store

    def call(self, method: str, path: str, **kw: Any) -> TestResponse:
        resp = self.app.test_client().open(path, method=method, **kw)
        assert resp.mimetype == "application/json", resp.data[:200]
        return resp

    def register(self, prefix: str, text: str = "demo prefix", **kw: Any) -> TestResponse:
        """PUT 0.NA/<prefix> as the national admin."""
        return self.call(
            "PUT",
            f"/api/handles/0.NA/{prefix}",
            data=_prefix_body(text),
            content_type="application/json",
            headers=_basic(kw.pop("auth", TOP_ADMIN)),
            **kw,
        )

    def resolve(self, handle: str) -> TestResponse:
        return self.call("GET", f"/api/handles/{handle}")

    def status(self) -> dict[str, Any]:
        resp = self.call("GET", "/_emulator/status")
        assert resp.status_code == 200
        body: dict[str, Any] = resp.get_json()
        return body

    def values(self) -> dict[str, Any]:
        """Every record of the store, by key, for comparing primary and backup."""
        out: dict[str, Any] = {}
        for entry in self.store.changes_after(0, 100_000):
            record = self.store.get(entry.key)
            out[entry.key] = None if record is None else record.values
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Pair:
    """cq-top (primary) and cd-backup (backup), each openable again as a restart would."""

    topology: Topology
    topo_path: Path
    data_dir: Path
    kind: str
    redis_url: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)
    nodes: dict[str, Top] = field(default_factory=dict)

    def start(self, name: str, **overrides: Any) -> Top:
        """Build (or rebuild, as after a restart) a node on its existing data."""
        settings = NodeSettings(
            node=name,
            topology=self.topo_path,
            data_dir=self.data_dir,
            store=self.kind,  # type: ignore[arg-type]
            redis_url=self.redis_url,
            **{
                "replication_wait": 0,
                "replication_sync_timeout": 0,
                **self.settings,
                **overrides,
            },
        )
        node = Top(name, create_app(settings))
        node.repl.session = self.session
        self.nodes[name] = node
        mount_apps(self.session, {self.topology.node(name).url: node.app})
        return node

    @property
    def primary(self) -> Top:
        return self.nodes["cq-top"]

    @property
    def backup(self) -> Top:
        return self.nodes["cd-backup"]

    def sync(self) -> int:
        """Poll the backup until it holds everything; the number of polls."""
        for n in range(1, 50):
            self.backup.follower.poll_once()
            if self.backup.status()["seq_behind"] == 0 and (
                self.backup.store.last_seq() == self.backup.repl.state()["upstream_last_seq"]
            ):
                return n
        raise AssertionError("the backup did not catch up")


@pytest.fixture
def kind() -> str:
    return "sqlite"


@pytest.fixture
def pair(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    topology = topology_on_free_ports(["cq-top", "cd-backup", "furniture"])
    topo_path = tmp_path / "topology.json"
    topo_path.write_text(topology.dumps(), "utf-8")
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    made = Pair(topology, topo_path, tmp_path / "data", kind, url)
    made.start("cq-top")
    made.start("cd-backup")
    yield made
    for node in made.nodes.values():
        node.follower.stop()


# --- following -------------------------------------------------------------------------


@STORES
def test_backup_copies_the_primary_and_serves_the_same_reads(pair: Pair) -> None:
    assert pair.primary.register("88.200", "first").status_code == 201
    assert pair.primary.register("88.201", "second").status_code == 201
    pair.sync()
    # The first contact finds the backup on its own seed history: a full copy replaces it.
    assert pair.backup.status()["resyncs"] == 1
    assert pair.backup.values() == pair.primary.values()
    for path in ("88.200", "88.201", "88.168", "0.NA/88"):
        assert pair.backup.resolve(path).get_json() == pair.primary.resolve(path).get_json()
    # Referral works unchanged: the backup has the same registry.
    referral = pair.backup.call("GET", "/api/handles/88.168.1/X?recursion=false")
    assert referral.status_code == 300 and referral.get_json()["responseCode"] == 303
    assert (
        pair.backup.call("GET", "/api/handles?prefix=0.NA").get_json()["handles"]
        == (pair.primary.call("GET", "/api/handles?prefix=0.NA").get_json()["handles"])
    )


@STORES
def test_changes_apply_in_order_one_page_at_a_time(pair: Pair) -> None:
    backup = pair.start("cd-backup", replication_batch=1)
    pair.sync()
    primary = pair.primary
    primary.register("88.210", "v1")
    primary.register("88.210", "v2")
    primary.register("88.211", "other")
    resp = primary.call("DELETE", "/api/handles/0.NA/88.211", headers=_basic(TOP_ADMIN))
    assert resp.status_code == 200
    primary.register("88.211", "back again")
    before = backup.store.last_seq()
    assert [backup.follower.poll_once() for _ in range(6)] == [1, 1, 1, 1, 1, 0]
    assert backup.store.last_seq() == before + 5
    assert backup.values() == primary.values()
    record = backup.resolve("88.211").get_json()
    assert record["values"][0]["data"]["value"] == "back again"
    assert [e.seq for e in backup.store.changes_after(0, 1000)] == list(
        range(1, backup.store.last_seq() + 1)
    )


def test_reapplying_the_same_changes_changes_nothing(pair: Pair) -> None:
    pair.sync()
    pair.primary.register("88.220")
    pair.primary.register("88.221")
    pair.sync()
    backup = pair.backup.store
    snapshot, last = pair.backup.values(), backup.last_seq()
    history = backup.log_id()
    # The same page delivered again (a retried long-poll), and an overlapping one.
    entries = pair.primary.store.changes_after(0, 1000)
    assert backup.apply_changes(history, entries) == last
    assert backup.apply_changes(history, entries[-2:]) == last
    assert pair.backup.follower.poll_once() == 0
    assert (pair.backup.values(), backup.last_seq()) == (snapshot, last)


@STORES
def test_restart_of_either_side_keeps_the_position(pair: Pair) -> None:
    pair.sync()
    pair.primary.register("88.230")
    pair.sync()
    history, last = pair.primary.store.log_id(), pair.primary.store.last_seq()
    # The backup restarts: same history, same position, no new full copy.
    backup = pair.start("cd-backup")
    assert (backup.store.log_id(), backup.store.last_seq()) == (history, last)
    pair.primary.register("88.231")
    assert backup.follower.poll_once() == 1
    assert backup.status()["resyncs"] == 1
    # The primary restarts: its log and history survive, the backup just goes on.
    primary = pair.start("cq-top")
    assert (primary.store.log_id(), primary.store.last_seq()) == (history, last + 1)
    primary.register("88.232")
    assert backup.follower.poll_once() == 1
    assert backup.status()["resyncs"] == 1
    assert backup.values() == primary.values()


def test_a_primary_that_lost_changes_makes_the_backup_copy_it_again(pair: Pair) -> None:
    pair.sync()
    pair.primary.register("88.240")
    pair.sync()
    # The primary loses its last change and takes another one under the same number
    # (a Redis without fsync that crashed): the backup must not keep the lost one.
    store = pair.primary.store
    entries = store.changes_after(0, 1000)
    history = store.log_id()
    store.clear()
    store.replace_log(history, entries[:-1])
    store.put_many([Record("0.NA/88.241", [])])
    pair.backup.follower.poll_once()
    assert pair.backup.status()["resyncs"] == 2
    assert pair.backup.resolve("88.240").status_code == 404
    assert pair.backup.values() == pair.primary.values()


def test_a_reset_primary_starts_a_history_the_backup_copies(pair: Pair) -> None:
    pair.sync()
    pair.primary.register("88.250")
    pair.sync()
    resp = pair.primary.call("POST", "/_emulator/reset")
    assert resp.status_code == 200, resp.get_json()
    pair.sync()
    assert pair.backup.resolve("88.250").status_code == 404
    assert pair.backup.values() == pair.primary.values()
    assert pair.backup.store.log_id() == pair.primary.store.log_id()


# --- read-only backup, status ---------------------------------------------------------


@STORES
def test_the_backup_refuses_writes_naming_the_primary(pair: Pair) -> None:
    pair.sync()
    before = pair.backup.values()
    primary_url = pair.topology.node("cq-top").url
    for resp in (
        pair.backup.register("88.260"),
        pair.backup.call("DELETE", "/api/handles/0.NA/88.168", headers=_basic(TOP_ADMIN)),
    ):
        body = resp.get_json()
        assert (resp.status_code, body["responseCode"]) == (503, 7), body
        assert "cq-top" in body["message"] and primary_url in body["message"]
    assert pair.backup.values() == before


def test_status_reports_position_and_lag(pair: Pair) -> None:
    backup = pair.start("cd-backup", replication_batch=1)
    assert backup.status()["seconds_behind"] is None  # never reached the primary yet
    pair.sync()
    for n in range(3):
        pair.primary.register(f"88.27{n}")
    time.sleep(0.05)
    backup.follower.poll_once()
    status = backup.status()
    last = pair.primary.store.last_seq()
    assert status["role"] == "backup" and status["writable"] is False
    assert status["primary"]["node"] == "cq-top" and status["primary"]["reachable"] is True
    assert status["primary"]["last_seq"] == last
    assert status["last_seq_applied"] == last - 2
    assert status["seq_behind"] == 2
    assert status["seconds_behind"] >= 0.05
    pair.sync()
    status = backup.status()
    assert (status["seq_behind"], status["seconds_behind"], status["last_seq_applied"]) == (
        0,
        0.0,
        last,
    )
    backup.follower.poll_once()  # each request tells the primary how far the backup holds
    primary = pair.primary.status()
    assert primary["role"] == "primary" and primary["writable"] is True
    assert primary["last_seq"] == last
    assert primary["durability"]["synchronous"] == "full"
    assert [f["node"] for f in primary["followers"]] == ["cd-backup"]
    assert primary["followers"][0]["acked_seq"] == last


def test_status_says_when_the_primary_does_not_answer(pair: Pair) -> None:
    pair.sync()
    pair.session.close()
    pair.session = requests.Session()  # nothing mounted: the free port refuses
    pair.backup.repl.session = pair.session
    with pytest.raises(Exception, match="unreachable"):
        pair.backup.follower.poll_once()
    pair.backup.follower._note_error(RuntimeError("cq-top is unreachable"))
    status = pair.backup.status()
    assert status["primary"]["reachable"] is False
    assert status["seconds_behind"] is None
    assert "unreachable" in status["primary"]["error"]


# --- the feed --------------------------------------------------------------------------


def test_the_feed_needs_the_replication_token(pair: Pair) -> None:
    resp = pair.primary.call("GET", "/api/replication/changes")
    assert (resp.status_code, resp.get_json()["responseCode"]) == (401, 402)
    resp = pair.primary.call(
        "GET", "/api/replication/changes", headers={"Authorization": "Bearer wrong"}
    )
    assert (resp.status_code, resp.get_json()["responseCode"]) == (403, 403)
    ok = pair.primary.call(
        "GET",
        "/api/replication/changes?after=0&limit=1",
        headers={"Authorization": "Bearer demo-replication-secret"},
    )
    body = ok.get_json()
    assert ok.status_code == 200 and [c["seq"] for c in body["changes"]] == [1]
    assert body["last_seq"] == pair.primary.store.last_seq() == 2  # its seed: two records
    assert body["next_at"] == pair.primary.store.changes_after(1, 1)[0].at
    change = LogEntry.from_json(body["changes"][0])
    assert change == pair.primary.store.changes_after(0, 1)[0]
    bad = pair.primary.call(
        "GET",
        "/api/replication/changes?limit=0",
        headers={"Authorization": "Bearer demo-replication-secret"},
    )
    assert (bad.status_code, bad.get_json()["responseCode"]) == (400, 4)


def test_the_feed_long_polls_until_a_change_arrives(pair: Pair) -> None:
    last = pair.primary.store.last_seq()
    headers = {"Authorization": "Bearer demo-replication-secret"}
    path = f"/api/replication/changes?after={last}&wait=5"
    timer = threading.Timer(0.3, lambda: pair.primary.register("88.280"))
    began = time.monotonic()
    timer.start()
    try:
        body = pair.primary.call("GET", path, headers=headers).get_json()
    finally:
        timer.join()
    took = time.monotonic() - began
    assert 0.25 <= took < 3, took
    assert [c["key"] for c in body["changes"]] == [fold("0.NA/88.280")]
    began = time.monotonic()
    path = f"/api/replication/changes?after={last + 1}&wait=0.2"
    empty = pair.primary.call("GET", path, headers=headers)
    assert empty.get_json()["changes"] == [] and time.monotonic() - began >= 0.2


def test_writes_wait_for_a_connected_backup(pair: Pair) -> None:
    primary = pair.start("cq-top", replication_sync_timeout=3)
    backup = pair.start("cd-backup", replication_wait=0.5)
    pair.sync()
    # No backup connected for a while: asynchronous. (The sync above connected it.)
    primary.store.set_meta("replication.ack.cd-backup", json.dumps({"seq": 0, "time": 0}))
    assert primary.register("88.290").headers["X-Idr-Replicated"] == "async"
    # The real follower thread long-polls: every acknowledged write is on the backup.
    backup.follower.start()
    deadline = time.monotonic() + 5
    while not any(f["connected"] for f in primary.status()["followers"]):
        assert time.monotonic() < deadline, "the follower thread never asked the primary"
        time.sleep(0.01)
    try:
        for n in range(5):
            resp = primary.register(f"88.29{n}", f"v{n}")
            assert resp.headers["X-Idr-Replicated"] == "synced"
            assert backup.resolve(f"88.29{n}").get_json()["values"][0]["data"]["value"] == f"v{n}"
    finally:
        backup.follower.stop()
    # A backup that stays connected but does not apply: the write waits, then goes on.
    primary = pair.start("cq-top", replication_sync_timeout=0.2)
    primary.store.set_meta("replication.ack.cd-backup", json.dumps({"seq": 0, "time": time.time()}))
    began = time.monotonic()
    assert primary.register("88.299").headers["X-Idr-Replicated"] == "timeout"
    assert time.monotonic() - began >= 0.2


# --- promotion and rejoin ---------------------------------------------------------------


@STORES
def test_promote_then_the_old_primary_rejoins_as_a_follower(pair: Pair) -> None:
    pair.sync()
    pair.primary.register("88.300", "before the failure")
    pair.sync()
    # cq-top takes a write the backup never sees, then "fails".
    pair.primary.register("88.301", "lost with the primary")
    resp = pair.backup.call("POST", "/_emulator/promote")
    body = resp.get_json()
    assert resp.status_code == 200 and body["promoted"] is True, body
    status = pair.backup.status()
    assert (status["role"], status["writable"], status["epoch"]) == ("primary", True, 1)
    assert pair.backup.call("POST", "/_emulator/promote").get_json()["promoted"] is False
    # The promoted backup takes writes (the national admin secret is the replicated one).
    assert pair.backup.register("88.302", "after promotion").status_code == 201
    # The old primary restarts, sees the promoted peer's higher epoch and follows it.
    old = pair.start("cq-top")
    assert old.repl.reconcile() == "cd-backup"
    assert old.store.get_meta(ROLE_META) == "backup"
    old.follower.poll_once()
    status = old.status()
    assert (status["role"], status["epoch"], status["primary"]["node"]) == (
        "backup",
        1,
        "cd-backup",
    )
    assert status["seq_behind"] == 0
    assert old.values() == pair.backup.values()
    assert old.resolve("88.302").status_code == 200
    assert old.resolve("88.301").status_code == 404  # asynchronous: the tail is lost
    refused = old.register("88.303").get_json()
    assert refused["responseCode"] == 7 and "cd-backup" in refused["message"]
    # The promoted node keeps its role across a restart, and stays primary.
    again = pair.start("cd-backup")
    assert again.repl.role() == "primary" and again.repl.reconcile() is None
    again.register("88.304")
    old.follower.poll_once()
    assert old.resolve("88.304").status_code == 200


def test_promotion_fences_a_follower_in_flight(pair: Pair) -> None:
    pair.sync()
    pair.primary.register("88.310")
    history = pair.backup.store.log_id()
    entries = pair.primary.store.changes_after(pair.backup.store.last_seq(), 10)
    pair.backup.call("POST", "/_emulator/promote")
    assert pair.backup.store.get_meta(LOG_ID_META) != history
    # The page that was on its way when the promotion happened is not applied.
    assert pair.backup.follower.poll_once() == 0
    with pytest.raises(Exception, match="history"):
        pair.backup.store.apply_changes(history, entries)
    assert pair.backup.resolve("88.310").status_code == 404


def test_a_primary_steps_down_when_it_sees_a_promoted_peer_at_runtime(pair: Pair) -> None:
    pair.sync()
    pair.backup.call("POST", "/_emulator/promote")
    # Both run; the old primary's watcher finds the higher epoch on its next check.
    assert pair.primary.repl.reconcile() == "cd-backup"
    assert pair.primary.register("88.320").get_json()["responseCode"] == 7
    # An unreachable peer changes nothing.
    lonely = Pair(pair.topology, pair.topo_path, pair.data_dir / "lonely", "sqlite", None)
    solo = lonely.start("cq-top")
    assert solo.repl.reconcile() is None and solo.repl.role() == "primary"


@pytest.mark.redis
def test_sqlite_primary_feeds_a_redis_backup(tmp_path: Path, redis_url: str) -> None:
    topology = topology_on_free_ports(["cq-top", "cd-backup"])
    topo_path = tmp_path / "topology.json"
    topo_path.write_text(topology.dumps(), "utf-8")
    sqlite_side = Pair(topology, topo_path, tmp_path / "data", "sqlite", None)
    redis_side = Pair(
        topology, topo_path, tmp_path / "data", "redis", redis_url, session=sqlite_side.session
    )
    sqlite_side.start("cq-top")
    redis_side.start("cd-backup")
    sqlite_side.nodes["cd-backup"] = redis_side.backup
    sqlite_side.primary.register("88.330")
    sqlite_side.sync()
    assert sqlite_side.backup.values() == sqlite_side.primary.values()
    assert sqlite_side.backup.store.durability()["backend"] == "redis"


def test_a_follower_on_another_history_is_answered_at_once(pair: Pair) -> None:
    headers = {"Authorization": "Bearer demo-replication-secret"}
    last = pair.primary.store.last_seq()
    began = time.monotonic()
    body = pair.primary.call(
        "GET",
        f"/api/replication/changes?after={last}&wait=5&follower=cd-backup&log=elsewhere",
        headers=headers,
    ).get_json()
    assert time.monotonic() - began < 1
    assert body["log_id"] == pair.primary.store.log_id() and body["changes"] == []
    # Same history but a different change at `after` (a diverged log): at once, too.
    history = pair.primary.store.log_id()
    began = time.monotonic()
    body = pair.primary.call(
        "GET",
        f"/api/replication/changes?after={last}&wait=5&follower=cd-backup&log={history}&at=1.5",
        headers=headers,
    ).get_json()
    assert time.monotonic() - began < 1
    assert body["base_at"] == pair.primary.store.changes_after(last - 1, 1)[0].at != 1.5
    # Neither counts as the backup holding anything.
    assert pair.primary.repl.acks() == {}


def test_a_fork_waits_for_the_follower_to_leave_the_store(pair: Pair) -> None:
    """gunicorn forks its workers while the follower thread runs in the master."""
    backup = pair.start("cd-backup", replication_wait=0.2)
    backup.follower.start()
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:  # the child: a worker would serve requests from here
                os._exit(0 if backup.follower._fork_lock is None else 1)
            _, code = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(code) == 0
        pair.primary.register("88.340")
        deadline = time.monotonic() + 5
        while backup.resolve("88.340").status_code != 200:
            assert time.monotonic() < deadline, "the follower stopped after the forks"
            time.sleep(0.02)
    finally:
        backup.follower.stop()
