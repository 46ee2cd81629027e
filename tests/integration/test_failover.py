"""The Resolver over two top-level nodes in-process: failover, retries, the circuit breaker."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from clients.breaker import CircuitBreaker
from clients.emulator import EmulatorClient
from clients.resolver import Resolver
from clients.transport import mount_apps
from idcore.errors import (
    HandleNotFound,
    InvalidHandle,
    NodeUnreachable,
    ServerBusy,
    TransportError,
)
from idcore.settings import NodeSettings
from tests.integration.conftest import PRODUCT, SECONDARIES, TOP, Hierarchy, Node
from tests.support.hierarchy import free_ports

CQ, CD = "http://cq.test", "http://cd.test"
TIMBER_LOT = "88.169.1"


class Clock:
    """A monotonic clock moved by hand (for the breaker)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Pair:
    """Chongqing and Chengdu in-process over the same six secondary nodes."""

    def __init__(self, cq: Node, cd: Node, hierarchy: Hierarchy) -> None:
        self.cq, self.cd, self.hierarchy = cq, cd, hierarchy
        topology = NodeSettings(node=TOP).load_topology()
        self.secondary_urls = {
            topology.node(n).url: hierarchy.secondaries[n].app for n in SECONDARIES
        }
        self.session = mount_apps(
            requests.Session(), {CQ: cq.app, CD: cd.app, **self.secondary_urls}
        )

    def controls(self, url: str) -> EmulatorClient:
        return EmulatorClient(url, session=self.session)

    def journal(self, url: str) -> list[dict[str, Any]]:
        return self.controls(url).journal()

    def resolver(self, urls: list[str] | None = None, **kw: Any) -> Resolver:
        kw.setdefault("backoff", 0.001)
        kw.setdefault("seed", 1)
        return Resolver(urls or [CQ, CD], session=self.session, **kw)

    def identifiers(self, prefix: str) -> list[str]:
        """Every identifier of an enterprise prefix (read straight from its node)."""
        node = "furniture" if prefix.startswith("88.168") else "timber"
        resp = self.hierarchy.secondaries[node].get(f"/api/handles?prefix={prefix}")
        return [h for h in resp.get_json()["handles"] if not h.endswith("/ADMIN")]


@pytest.fixture
def pair(hierarchy: Hierarchy, make_node: Any) -> Pair:
    cd: Node = make_node(TOP)
    upstream = cd.app.extensions["idr.upstream"]
    topology = NodeSettings(node=TOP).load_topology()
    mount_apps(
        upstream.session,
        {topology.node(n).url: hierarchy.secondaries[n].app for n in SECONDARIES},
    )
    return Pair(hierarchy.top, cd, hierarchy)


# -- failover -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "outage", "drop": True},
        {"kind": "outage"},
        {"kind": "error", "responseCode": 2, "httpStatus": 500},
        {"kind": "latency", "latencyMs": 600},
    ],
    ids=["dropped", "503", "500", "timeout"],
)
def test_a_failing_first_node_is_answered_by_the_second(pair: Pair, fault: dict[str, Any]) -> None:
    pair.controls(CQ).set_faults([fault])
    # A timeout well above the healthy node's few milliseconds: with 0.1 s, a stall of
    # the loaded CI machine once made the second node's answer count as late.
    with pair.resolver(timeout=0.5, deadline=4) as resolver:
        record = resolver.resolve(PRODUCT)
    assert record.served_by == CD and record.attempts == 2
    assert record.data("URL")
    assert [e["fault"] for e in pair.journal(CQ)] == [fault["kind"]]
    assert [e["status"] for e in pair.journal(CD)] == [200]


def test_an_unreachable_first_node_is_answered_by_the_second(pair: Pair) -> None:
    [closed] = free_ports(1)
    with pair.resolver([f"http://127.0.0.1:{closed}", CD]) as resolver:
        record = resolver.resolve(PRODUCT)
    assert record.served_by == CD


def test_a_healthy_first_node_answers_alone(pair: Pair) -> None:
    with pair.resolver() as resolver:
        assert resolver.resolve(PRODUCT).served_by == CQ
    assert pair.journal(CD) == []


# -- what is never retried ------------------------------------------------------------------


def test_a_handle_answer_is_final_and_never_retried(pair: Pair) -> None:
    with pair.resolver() as resolver:
        with pytest.raises(HandleNotFound):
            resolver.resolve("88.168.1/NO-SUCH-ITEM")
        pair.controls(CQ).set_faults([{"kind": "error", "responseCode": 102}])
        with pytest.raises(InvalidHandle):
            resolver.resolve("88.168.1/ANOTHER-ITEM")
    assert [(e["status"], e["responseCode"]) for e in pair.journal(CQ)] == [(404, 100), (400, 102)]
    assert pair.journal(CD) == [], "a Handle answer never moves to the next node"


# -- retries --------------------------------------------------------------------------------


def test_reads_retry_after_a_jittered_backoff(pair: Pair) -> None:
    pair.controls(CQ).set_faults([{"kind": "error", "limit": 2}])
    pauses: list[float] = []
    with pair.resolver([CQ], retries=2, backoff=0.05, backoff_cap=0.08) as resolver:
        resolver._sleep = pauses.append
        record = resolver.resolve(PRODUCT)
    assert record.served_by == CQ and record.attempts == 3
    assert len(pauses) == 2 and 0 <= pauses[0] <= 0.05 and 0 <= pauses[1] <= 0.08
    assert [e["status"] for e in pair.journal(CQ)] == [500, 500, 200]


def test_when_every_attempt_fails_the_error_names_each_node(pair: Pair) -> None:
    for url in (CQ, CD):
        pair.controls(url).set_faults([{"kind": "outage"}])
    with pair.resolver(retries=2) as resolver, pytest.raises(ServerBusy) as caught:
        resolver.resolve(PRODUCT)
    assert CQ in caught.value.message and CD in caught.value.message
    assert "6 attempts" in caught.value.message
    assert len(pair.journal(CQ)) == len(pair.journal(CD)) == 3
    for url in (CQ, CD):
        pair.controls(url).set_faults([{"kind": "outage", "drop": True}])
    with pair.resolver(retries=0) as resolver, pytest.raises(NodeUnreachable) as lost:
        resolver.resolve(PRODUCT)
    assert isinstance(lost.value, TransportError) and CQ in lost.value.message


def test_a_node_that_timed_out_is_not_asked_again_in_the_same_read(pair: Pair) -> None:
    pair.controls(CQ).set_faults([{"kind": "latency", "latencyMs": 600}])
    pair.controls(CD).set_faults([{"kind": "error", "limit": 1}])
    with pair.resolver(timeout=0.5, deadline=5, retries=3) as resolver:
        assert resolver.resolve(PRODUCT).served_by == CD
    assert len(pair.journal(CQ)) == 1
    assert [e["status"] for e in pair.journal(CD)] == [500, 200]


def test_retries_stop_at_the_deadline(pair: Pair) -> None:
    pair.controls(CQ).set_faults([{"kind": "outage"}])
    resolver = pair.resolver([CQ], retries=50, backoff=0.2, backoff_cap=0.2, deadline=0.3)
    with resolver, pytest.raises(ServerBusy):
        resolver.resolve(PRODUCT)
    assert len(pair.journal(CQ)) < 5


# -- the circuit breaker --------------------------------------------------------------------


def test_the_breaker_skips_a_dead_node_and_probes_it_later(pair: Pair) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after=5, clock=clock)
    pair.controls(CQ).set_faults([{"kind": "outage", "drop": True}])
    with pair.resolver(breaker=breaker) as resolver:
        for _ in range(5):
            assert resolver.resolve(PRODUCT, fresh=True).served_by == CD
        assert len(pair.journal(CQ)) == 2, "skipped once its circuit opened"
        assert breaker.state(CQ) == "open"
        clock.now += 5
        assert resolver.resolve(PRODUCT, fresh=True).served_by == CD
        assert len(pair.journal(CQ)) == 3, "one probe after the pause, which failed"
        pair.controls(CQ).clear_faults()
        assert resolver.resolve(PRODUCT, fresh=True).served_by == CD, "still open"
        clock.now += 5
        assert resolver.resolve(PRODUCT, fresh=True).served_by == CQ, "the probe succeeded"
        assert breaker.state(CQ) == "closed"
        assert resolver.resolve(PRODUCT, fresh=True).served_by == CQ


def test_when_every_circuit_is_open_every_node_is_still_tried(pair: Pair) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after=60)
    breaker.record_failure(CQ)
    breaker.record_failure(CD)
    with pair.resolver(breaker=breaker) as resolver:
        assert resolver.resolve(PRODUCT).served_by == CQ
    assert breaker.state(CQ) == "closed"


def test_a_gateway_error_is_retried_but_not_blamed_on_the_top_level_node(pair: Pair) -> None:
    furniture = pair.hierarchy.secondaries["furniture"]
    EmulatorClient("http://127.0.0.1:8101", session=pair.session).set_faults(
        [{"kind": "outage", "drop": True}]
    )
    breaker = CircuitBreaker(failure_threshold=1)
    with pair.resolver(breaker=breaker, retries=0) as resolver:
        with pytest.raises(Exception, match="502"):
            resolver.resolve(PRODUCT)
        assert breaker.state(CQ) == breaker.state(CD) == "closed"
        timber = pair.identifiers(TIMBER_LOT)[0]
        assert resolver.resolve(timber).served_by == CQ
    assert furniture.app.extensions["idr.faults"].log()


# -- iterative mode: the secondary node is retried itself ----------------------------------


def test_iterative_reads_retry_the_secondary_node(pair: Pair) -> None:
    furniture_url = "http://127.0.0.1:8101"
    EmulatorClient(furniture_url, session=pair.session).set_faults(
        [{"kind": "error", "responseCode": 3, "httpStatus": 503, "limit": 1}]
    )
    with pair.resolver(mode="iterative") as resolver:
        record = resolver.resolve(PRODUCT)
    assert record.served_by == furniture_url and record.path == [CQ, furniture_url]
    assert record.attempts == 2
    assert pair.journal(CD) == [], "the top-level node did its part: no failover there"


def test_every_identifier_resolves_under_30_percent_errors(pair: Pair) -> None:
    furniture_url = "http://127.0.0.1:8101"
    handles = pair.identifiers("88.168.1") + pair.identifiers("88.168.2")
    EmulatorClient(furniture_url, session=pair.session).set_faults(
        [{"kind": "error", "probability": 0.3, "seed": 30}]
    )
    assert len(handles) >= 10
    with pair.resolver(mode="iterative", retries=5) as resolver:
        records = [resolver.resolve(h) for h in handles]
    assert all(r.values for r in records)
    injected = EmulatorClient(furniture_url, session=pair.session).fault_log()
    assert injected, "some reads failed and were retried"
    assert sum(r.attempts for r in records) == len(handles) + len(injected)
