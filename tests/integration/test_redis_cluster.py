"""The Redis store on a real 3-master Redis Cluster: the store contract, a node, a trace.

The store contract tests of test_store_contract.py run here again, unchanged, with this
module's `store` / `make_store` fixtures handing them stores on the cluster
(`redis+cluster://` URL). Tests that need the change log are skipped: on a cluster it is
refused by design (each logged write would span two hash slots), which the test below
checks. Then secondary nodes run on the cluster and the top-level node (SQLite: it keeps
the change log) resolves and traces through them.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from clients.transport import mount_apps
from idcore.credentials import SecretVerifier
from idcore.redis_store import RedisStore, cluster_node_url
from idcore.settings import NodeSettings
from idcore.store import Record, Store, open_store
from resolver.app import create_app as create_top
from resolver.upstream import Upstream
from secondary_nodes.app import create_app as create_secondary
from tests.integration import test_store_contract as contract
from tests.integration.conftest import NODE_ADMIN, PRODUCT, TOP, Node, Seed, basic, expect
from tests.support.redis_cluster import RedisClusterServer

pytestmark = pytest.mark.redis

_STORE_FIXTURES = {"store", "make_store", "backend", "logged"}
_LOG_SKIP = "the change log is refused on a Redis Cluster (CROSSSLOT), as tested below"


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterServer) -> Iterator[str]:
    """The cluster's URL; every master is emptied after the test."""
    yield redis_cluster.url
    redis_cluster.flush()


# --- the contract suite, on the cluster ------------------------------------------------


@pytest.fixture
def backend() -> str:
    """What `durability()` reports for the back end under test."""
    return "redis"


@pytest.fixture
def make_store(cluster_url: str) -> Iterator[Any]:
    """Stores on the cluster; same name → same namespace (same data)."""
    opened: list[Store] = []
    names: dict[str, str] = {}

    def make(name: str = "node", changelog: bool = False) -> Store:
        if changelog:
            pytest.skip(_LOG_SKIP)
        namespace = names.setdefault(name, f"t-{uuid.uuid4().hex[:12]}")
        store = RedisStore(cluster_url, namespace=namespace)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Any) -> Store:
    """A fresh, empty store on the cluster."""
    made: Store = make_store()
    return made


@pytest.fixture
def logged() -> Store:
    """The contract's change-log store: not available on a cluster."""
    pytest.skip(_LOG_SKIP)


def _contract_tests() -> dict[str, Any]:
    """Every contract test that takes a store fixture (and nothing else)."""
    found = {}
    for name, func in vars(contract).items():
        if not name.startswith("test_") or not inspect.isfunction(func):
            continue
        params = set(inspect.signature(func).parameters)
        if params and params <= _STORE_FIXTURES and params & {"store", "make_store", "logged"}:
            found[name] = func
    return found


globals().update(_contract_tests())


def test_the_contract_suite_is_collected_here() -> None:
    assert {"test_mutate_creates_replaces_and_deletes", "test_list_handles_pages"} <= set(
        _contract_tests()
    )


# --- cluster specifics -------------------------------------------------------------------


def test_cluster_urls_are_recognised() -> None:
    assert cluster_node_url("redis+cluster://127.0.0.1:7000/0") == "redis://127.0.0.1:7000/0"
    assert cluster_node_url("REDISS+CLUSTER://h:1") == "rediss://h:1"
    assert cluster_node_url("redis://127.0.0.1:6379/0") is None
    assert cluster_node_url("unix:///tmp/redis.sock") is None


def test_store_opens_a_cluster_client_and_spreads_prefixes(cluster_url: str) -> None:
    store = RedisStore(cluster_url, namespace="spread")
    try:
        assert store.cluster is True
        store.put_many(
            Record(f"88.{168 + i % 6}.{i}/P{i}", contract._values(str(i))) for i in range(60)
        )
        client = RedisCluster.from_url(cluster_node_url(cluster_url) or "")
        try:
            keys = [k.decode() for k in client.scan_iter(match="idr:{spread:*")]
            owners = {client.get_node_from_key(k).port for k in keys}
        finally:
            client.close()
        assert len(keys) == 120  # a record and an index per prefix
        assert len(owners) == 3, "60 prefixes should land on every master"
        assert store.count() == 60
        # A record and its prefix index share a slot, so each write is one transaction.
        assert key_slot(b"idr:{spread:88.168.6}:r:88.168.6/P6") == key_slot(
            b"idr:{spread:88.168.6}:idx"
        )
    finally:
        store.close()


def test_changelog_is_refused_on_a_cluster_with_a_clear_error(
    cluster_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="change log cannot run on a Redis Cluster"):
        RedisStore(cluster_url, namespace="top", changelog=True)
    with pytest.raises(ValueError, match="single Redis server"):
        open_store(
            "redis", namespace="top", data_dir=tmp_path, redis_url=cluster_url, changelog=True
        )


def test_aof_is_reported_and_enforced_on_every_master(redis_cluster: RedisClusterServer) -> None:
    clients = [
        redis.Redis(host="127.0.0.1", port=p, decode_responses=True) for p in redis_cluster.ports
    ]
    try:
        clients[1].config_set("appendfsync", "no")
        store = RedisStore(redis_cluster.url, namespace="aof")
        # The weakest master decides what is reported.
        assert store.durability()["appendfsync"] == "no"
        store.ensure_aof("everysec")
        assert [c.config_get("appendfsync")["appendfsync"] for c in clients] == ["everysec"] * 3
        store.close()
    finally:
        for client in clients:
            client.config_set("appendfsync", "everysec")
            client.close()


# --- nodes on the cluster ------------------------------------------------------------------


def _cluster_node(
    name: str, url: str, seeds: dict[str, Seed], verifier: SecretVerifier, tmp: Path
) -> Node:
    """A secondary node app whose store is the cluster, holding its demo seed."""
    store = RedisStore(url, namespace=f"{name}-{uuid.uuid4().hex[:8]}")
    seeds[name].into(store)
    app = create_secondary(NodeSettings(node=name, data_dir=tmp), store)
    app.extensions["idr.records"]._verifier = verifier
    return Node(name, app, store)


def test_secondary_node_resolves_writes_and_batches_on_the_cluster(
    cluster_url: str, seeds: dict[str, Seed], verifier: SecretVerifier, tmp_path: Path
) -> None:
    node = _cluster_node("furniture", cluster_url, seeds, verifier, tmp_path)
    try:
        assert node.values(PRODUCT)[1]["type"] == "URL"
        url_value = {"index": 1, "type": "URL", "data": "https://example.com/c1"}
        created = node.put("88.168.1/CLUSTER-1", {"values": [url_value]})
        assert created.status_code == 201
        assert node.values("88.168.1/cluster-1")[1]["data"]["value"] == "https://example.com/c1"
        batch = node.call(
            "POST",
            "/api/batch/handles",
            json={
                "handles": [
                    {
                        "handle": f"88.168.{1 + i % 2}/CLUSTER-B{i}",
                        "values": [{"index": 1, "type": "URL", "data": f"https://e.com/{i}"}],
                    }
                    for i in range(20)
                ]
            },
            headers={"Authorization": basic(NODE_ADMIN)},
        )
        assert batch.get_json()["succeeded"] == 20, batch.get_json()
        assert node.values("88.168.2/CLUSTER-B19")[1]["data"]["value"] == "https://e.com/19"
        listed = node.get("/api/handles?prefix=88.168.2").get_json()
        assert "88.168.2/CLUSTER-B19" in listed["handles"]
        assert node.delete("88.168.1/CLUSTER-1").status_code == 200
        expect(node.get("88.168.1/CLUSTER-1"), 404, 100)
    finally:
        node.store.close()


def test_top_level_node_traces_through_secondary_nodes_on_the_cluster(
    cluster_url: str, seeds: dict[str, Seed], verifier: SecretVerifier, tmp_path: Path
) -> None:
    settings = NodeSettings(node=TOP, data_dir=tmp_path)
    topology = settings.load_topology()
    top_store = open_store("sqlite", namespace=TOP, data_dir=tmp_path, changelog=True)
    seeds[TOP].into(top_store)
    top = Node(TOP, create_top(settings, top_store), top_store)
    names = ("furniture", "timber", "materials", "inspection")
    nodes = {n: _cluster_node(n, cluster_url, seeds, verifier, tmp_path) for n in names}
    try:
        upstream: Upstream = top.app.extensions["idr.upstream"]
        mount_apps(upstream.session, {topology.node(n).url: nodes[n].app for n in names})
        # Recursive resolve: the top-level node fetches the record from the cluster.
        assert top.values(PRODUCT)[1]["type"] == "URL"
        body = top.get(f"/api/trace/{PRODUCT}").get_json()
        served = {r["handle"] for r in body["records"]}
        assert PRODUCT in served and len(served) > 5, body["errors"]
        nodes_used = {n["name"] for n in body["nodes"] if n["records"]}
        assert {"furniture", "timber"} <= nodes_used
        lost = [e for e in body["errors"] if e["reason"] in ("unreachable", "error", "timeout")]
        assert not lost, lost
    finally:
        top_store.close()
        for node in nodes.values():
            node.store.close()
