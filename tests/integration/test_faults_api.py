"""Fault injection, the request journal and reset on nodes in-process (`/_emulator/...`)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from clients.emulator import EmulatorClient
from clients.transport import mount_apps
from idcore.errors import ProtocolError
from tests.integration.conftest import PRODUCT, Hierarchy, Node, expect

FURNITURE = "http://furniture.test"
OTHER = "88.168.2"


def put_faults(node: Node, body: Any, method: str = "PUT") -> Any:
    resp = node.client.open(
        "/_emulator/faults", method=method, data=json.dumps(body), content_type="application/json"
    )
    assert resp.status_code in (200, 201), resp.get_json()
    return resp.get_json()["faults"]


def journal(node: Node, query: str = "") -> list[dict[str, Any]]:
    resp = node.client.get(f"/_emulator/journal{query}")
    assert resp.status_code == 200
    entries: list[dict[str, Any]] = resp.get_json()["entries"]
    return entries


def other_handle(node: Node) -> str:
    """Some identifier of the second demo enterprise (88.168.2)."""
    resp = node.get(f"/api/handles?prefix={OTHER}")
    handles = [h for h in resp.get_json()["handles"] if "/" in h and not h.endswith("/ADMIN")]
    assert handles
    return str(handles[0])


@pytest.fixture
def furniture(make_node: Any) -> Node:
    node: Node = make_node("furniture")
    return node


@pytest.fixture
def session(furniture: Node) -> requests.Session:
    """A requests session that reaches the furniture app in-process, as a client would."""
    return mount_apps(requests.Session(), {FURNITURE: furniture.app})


# -- set, list, clear -----------------------------------------------------------------------


def test_faults_are_set_listed_added_removed_and_cleared(furniture: Node) -> None:
    assert furniture.get("/_emulator/faults").get_json() == {"faults": []}
    listed = put_faults(furniture, {"faults": [{"kind": "error", "probability": 0.3, "seed": 7}]})
    assert listed == [
        {
            "kind": "error",
            "id": "f1",
            "route": "*",
            "methods": [],
            "probability": 0.3,
            "seed": 7,
            "latencyMs": 0.0,
            "drop": False,
            "matched": 0,
            "injected": 0,
        }
    ]
    added = put_faults(furniture, {"kind": "latency", "latencyMs": 5, "id": "slow"}, "POST")
    assert [r["id"] for r in added] == ["slow"]
    assert [r["id"] for r in furniture.get("/_emulator/faults").get_json()["faults"]] == [
        "f1",
        "slow",
    ]
    resp = furniture.call("DELETE", "/_emulator/faults/f1")
    assert [r["id"] for r in resp.get_json()["faults"]] == ["slow"]
    expect(furniture.client.delete("/_emulator/faults/f1"), 404, 4, "no fault", "f1")
    assert furniture.call("DELETE", "/_emulator/faults").get_json() == {"faults": []}
    assert furniture.get("/_emulator/faults").get_json() == {"faults": []}


def test_a_bad_fault_is_refused_and_the_old_ones_stay(furniture: Node) -> None:
    put_faults(furniture, [{"kind": "latency", "latencyMs": 1}])
    resp = furniture.client.put(
        "/_emulator/faults",
        data=json.dumps([{"kind": "error", "probability": 2}]),
        content_type="application/json",
    )
    expect(resp, 400, 4, "fault #1", "probability")
    assert len(furniture.get("/_emulator/faults").get_json()["faults"]) == 1
    expect(furniture.client.put("/_emulator/faults", data="{"), 400, 4, "Content-Type")


# -- what faults do -------------------------------------------------------------------------


def test_an_error_answer_carries_the_configured_code_and_status(furniture: Node) -> None:
    put_faults(
        furniture,
        [{"kind": "error", "route": "/api/handles/*", "responseCode": 3, "httpStatus": 503}],
    )
    resp = furniture.get(PRODUCT, allow_5xx=True)
    body = expect(resp, 503, 3, "injected")
    assert body["handle"] == PRODUCT
    assert resp.headers["X-Idr-Fault"] == "f1"
    # The controls are never faulted.
    assert furniture.client.get("/_emulator/health").status_code == 200
    put_faults(furniture, [{"kind": "error", "responseCode": 100, "message": "gone (test)"}])
    expect(furniture.get(PRODUCT), 404, 100, "gone (test)")


def test_a_prefix_limits_a_fault_to_its_identifiers(furniture: Node) -> None:
    other = other_handle(furniture)
    put_faults(furniture, [{"kind": "error", "prefix": OTHER}])
    assert furniture.get(PRODUCT).status_code == 200
    expect(furniture.get(other, allow_5xx=True), 500, 2)


def test_the_same_seed_repeats_the_same_faults(furniture: Node) -> None:
    rules = [{"kind": "error", "probability": 0.5, "seed": 2024}]

    def outcomes() -> tuple[list[int], list[dict[str, Any]]]:
        put_faults(furniture, rules)
        statuses = [furniture.get(PRODUCT, allow_5xx=True).status_code for _ in range(40)]
        log = furniture.get("/_emulator/faults/log").get_json()["events"]
        return statuses, log

    first, log = outcomes()
    assert 5 < first.count(500) < 35 and set(first) == {200, 500}
    assert [e["seq"] for e in log] == [i + 1 for i, s in enumerate(first) if s == 500]
    assert outcomes() == (first, log)


def test_a_limited_fault_fails_the_first_requests_only(furniture: Node) -> None:
    put_faults(furniture, [{"kind": "error", "limit": 2}])
    statuses = [furniture.get(PRODUCT, allow_5xx=True).status_code for _ in range(4)]
    assert statuses == [500, 500, 200, 200]


def test_latency_delays_the_answer(furniture: Node) -> None:
    put_faults(furniture, [{"kind": "latency", "latencyMs": 120}])
    began = time.monotonic()
    assert furniture.get(PRODUCT).status_code == 200
    assert time.monotonic() - began >= 0.12
    [entry] = journal(furniture)
    assert entry["durationMs"] >= 120 and entry["fault"] == "latency"


def test_clearing_the_faults_releases_requests_waiting_out_a_latency(furniture: Node) -> None:
    put_faults(furniture, [{"kind": "latency", "latencyMs": 60_000}])
    done: list[int] = []
    waiting = threading.Thread(target=lambda: done.append(furniture.get(PRODUCT).status_code))
    began = time.monotonic()
    waiting.start()
    time.sleep(0.1)
    furniture.call("DELETE", "/_emulator/faults")
    waiting.join(5)
    assert done == [200] and time.monotonic() - began < 5


def test_latency_past_the_client_timeout_is_a_timeout(session: requests.Session) -> None:
    EmulatorClient(FURNITURE, session=session).set_faults([{"kind": "latency", "latencyMs": 150}])
    with pytest.raises(requests.ReadTimeout):
        session.get(f"{FURNITURE}/api/handles/{PRODUCT}", timeout=0.05)
    assert session.get(f"{FURNITURE}/api/handles/{PRODUCT}", timeout=1).status_code == 200


def test_a_dropped_connection_is_a_connection_error(
    furniture: Node, session: requests.Session
) -> None:
    EmulatorClient(FURNITURE, session=session).set_faults([{"kind": "drop", "limit": 1}])
    with pytest.raises(requests.ConnectionError):
        session.get(f"{FURNITURE}/api/handles/{PRODUCT}", timeout=1)
    assert session.get(f"{FURNITURE}/api/handles/{PRODUCT}", timeout=1).status_code == 200
    dropped, answered = journal(furniture)
    assert (dropped["status"], dropped["responseCode"], dropped["fault"]) == (None, None, "drop")
    assert (answered["status"], answered["responseCode"], answered["fault"]) == (200, 1, None)


def test_a_dropped_connection_over_a_real_socket(furniture: Node) -> None:
    """Under werkzeug's server (the harness's in-process mode) the socket is shut down too."""
    server = make_server("127.0.0.1", 0, furniture.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        put_faults(furniture, [{"kind": "drop", "limit": 1}])
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base}/api/handles/{PRODUCT}", timeout=5)
        assert requests.get(f"{base}/api/handles/{PRODUCT}", timeout=5).status_code == 200
    finally:
        server.shutdown()
        thread.join(5)


def test_a_full_outage_answers_503_to_everything_but_the_controls(
    furniture: Node, session: requests.Session
) -> None:
    put_faults(furniture, [{"kind": "outage"}])
    expect(furniture.get(PRODUCT, allow_5xx=True), 503, 3, "outage")
    expect(furniture.get("/api/handles?prefix=88.168.1", allow_5xx=True), 503, 3)
    expect(furniture.client.get("/no/such/path"), 503, 3)
    assert furniture.client.get("/_emulator/ready").status_code == 200
    put_faults(furniture, [{"kind": "outage", "drop": True}])
    with pytest.raises(requests.ConnectionError):
        session.get(f"{FURNITURE}/api/handles/{PRODUCT}", timeout=1)
    with pytest.raises(requests.ConnectionError):
        session.put(f"{FURNITURE}/api/handles/{PRODUCT}", json={"values": []}, timeout=1)
    assert session.get(f"{FURNITURE}/_emulator/health", timeout=1).status_code == 200


# -- journal --------------------------------------------------------------------------------


def test_the_journal_lists_recent_requests(furniture: Node) -> None:
    furniture.get(PRODUCT)
    furniture.get("88.168.1/NO-SUCH-ITEM")
    furniture.get(f"{PRODUCT}?type=URL")
    furniture.put(PRODUCT, {"values": []}, auth=None)
    furniture.client.get("/_emulator/health")  # the controls are not journaled
    entries = journal(furniture)
    assert [(e["method"], e["status"], e["responseCode"]) for e in entries] == [
        ("GET", 200, 1),
        ("GET", 404, 100),
        ("GET", 200, 1),
        ("PUT", 401, 402),
    ]
    first = entries[0]
    assert first["path"] == f"/api/handles/{PRODUCT}" and first["handle"] == PRODUCT
    assert entries[2]["query"] == "type=URL"
    assert first["time"].endswith("Z") and first["durationMs"] >= 0
    assert first["client"] == "127.0.0.1" and first["fault"] is None
    assert [e["seq"] for e in journal(furniture, "?since=2")] == [3, 4]
    assert [e["seq"] for e in journal(furniture, "?limit=1")] == [4]
    expect(furniture.client.get("/_emulator/journal?limit=x"), 400, 4, "limit")
    assert furniture.call("DELETE", "/_emulator/journal").get_json() == {"entries": []}
    assert journal(furniture) == []


def test_the_journal_keeps_only_its_capacity(furniture: Node) -> None:
    capacity = furniture.get("/_emulator/journal").get_json()["capacity"]
    assert capacity == 1000
    log = furniture.app.extensions["idr.journal"]
    for _ in range(capacity + 5):
        log.add(method="GET", path="/x", status=200, response_code=1, duration_ms=1.0)
    entries = journal(furniture)
    assert len(entries) == capacity and entries[0]["seq"] == 6


# -- reset ----------------------------------------------------------------------------------


def content(node: Node) -> dict[str, list[tuple[int, str, str]]]:
    """Every record's values, without what each seeding makes anew (time stamps, salts)."""
    out = {}
    for key, (_, _, body) in node.dump()["records"].items():
        # Signatures are made anew by each seeding (their iat): what they sign is compared.
        values = [v for v in json.loads(body)["v"] if v["type"] != "HS_SIGNATURE"]
        out[key] = [
            (v["index"], v["type"], "" if v["type"] == "HS_SECKEY" else json.dumps(v["data"]))
            for v in values
        ]
    return out


def test_reset_restores_the_seeded_state_after_writes(furniture: Node) -> None:
    seeded = furniture.dump()
    content_before = content(furniture)
    new = "88.168.1/RESET-TEST-1"
    furniture.put(new, {"values": [{"index": 1, "type": "URL", "data": "https://x.test"}]})
    changed = {"values": [{"index": 2, "type": "DESC", "data": "changed"}]}
    furniture.put(PRODUCT, changed, query="?index=2")
    furniture.delete(other_handle(furniture), auth=("300:88.168/ADMIN", "demo-furniture-admin"))
    assert furniture.dump() != seeded
    put_faults(furniture, [{"kind": "latency", "latencyMs": 1}])
    body = furniture.call("POST", "/_emulator/reset").get_json()
    assert body["responseCode"] == 1 and body["node"] == "furniture" and body["faults"] == 0
    assert body["records"] == len(seeded["records"])
    expect(furniture.get(new), 404, 100)
    assert furniture.get(PRODUCT).status_code == 200
    assert content(furniture) == content_before
    assert furniture.get("/_emulator/faults").get_json() == {"faults": []}
    # The journal starts afresh at the reset: only the two GETs above.
    assert [e["path"] for e in journal(furniture)] == [f"/api/handles/{h}" for h in (new, PRODUCT)]


def test_reset_can_keep_the_faults(furniture: Node) -> None:
    put_faults(furniture, [{"kind": "latency", "latencyMs": 1}])
    body = furniture.call("POST", "/_emulator/reset?keepFaults=true").get_json()
    assert body["faults"] == 1
    assert len(furniture.get("/_emulator/faults").get_json()["faults"]) == 1


def test_reset_of_the_top_level_node_clears_its_cache(hierarchy: Hierarchy) -> None:
    top = hierarchy.top
    assert top.get(PRODUCT).status_code == 200
    assert len(hierarchy.upstream.cache) > 0
    top.call("POST", "/_emulator/reset")
    assert len(hierarchy.upstream.cache) == 0
    assert top.get(PRODUCT).status_code == 200


def test_faults_on_a_secondary_reach_clients_of_the_top_level_node(hierarchy: Hierarchy) -> None:
    """Recursion relays the secondary node's failure: an answer, a gateway error, a timeout."""
    furniture = hierarchy.secondaries["furniture"]
    put_faults(furniture, [{"kind": "outage", "drop": True}])
    expect(hierarchy.top.get(PRODUCT, allow_5xx=True), 502, 2, "unreachable")
    put_faults(furniture, [{"kind": "outage"}])
    # The secondary answers 503/3; the top-level node is healthy, so it relays a gateway error
    # naming the failing node rather than a 503 that clients would hold against it.
    relayed = hierarchy.top.get(PRODUCT, query_string={"auth": "true"}, allow_5xx=True)
    expect(relayed, 502, 2, "failed", "503")


def test_the_emulator_client_speaks_the_controls(session: requests.Session) -> None:
    node = EmulatorClient(FURNITURE, session=session)
    node.set_faults([{"kind": "error", "limit": 1}])
    assert [r["id"] for r in node.add_faults([{"kind": "drop", "probability": 0}])] == ["f2"]
    session.get(f"{FURNITURE}/api/handles/{PRODUCT}")
    assert [e["rule"] for e in node.fault_log()] == ["f1"]
    assert [e["status"] for e in node.journal()] == [500]
    assert [r["id"] for r in node.remove_fault("f1")] == ["f2"]
    with pytest.raises(ProtocolError, match="probability"):
        node.add_faults([{"kind": "error", "probability": -1}])
    assert node.reset()["faults"] == 0
    assert node.faults() == [] and node.journal() == []
