"""The multi-get `GET /api/batch/handles`: each item as its own GET, faults and counts included."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, jsonify

from clients.transport import mount_apps
from idcore.errors import HandleNotFound
from idcore.identifier import parse_handle
from resolver.upstream import Upstream
from secondary_nodes.lookup import MAX_HANDLES
from tests.integration.conftest import PRODUCT, Hierarchy, Node, expect


def multi_get(node: Node, handles: list[str]) -> list[dict[str, Any]]:
    query = "&".join(f"handle={quote(h, safe='/')}" for h in handles)
    body = expect(node.get(f"/api/batch/handles?{query}"), 200, 1)
    results: list[dict[str, Any]] = body["results"]
    assert [r["handle"] for r in results] == handles
    return results


def single(node: Node, handle: str) -> dict[str, Any]:
    resp = node.call("GET", f"/api/handles/{quote(handle, safe='/')}", allow_5xx=True)
    body: dict[str, Any] = resp.get_json() or {}
    return {"responseCode": body.get("responseCode"), "status": resp.status_code, **body}


def put_faults(node: Node, rules: list[dict[str, Any]]) -> None:
    resp = node.client.put(
        "/_emulator/faults", data=json.dumps(rules), content_type="application/json"
    )
    assert resp.status_code == 200, resp.get_json()


ASKED = [
    PRODUCT,
    "88.168.1/NO-SUCH-ITEM",
    "88.169.1/BOARD-LOT-2024-0312",  # homed by another node
    "88.168.1/A\x01B",  # a control character
    PRODUCT.lower(),  # another spelling: echoed as asked
]


def test_each_item_answers_what_its_own_get_answers(secondary: Node) -> None:
    for item in multi_get(secondary, ASKED):
        own = single(secondary, item["handle"])
        assert (item["responseCode"], item["status"]) == (own["responseCode"], own["status"])
        assert item.get("values") == own.get("values")
    first, missing, foreign, bad, lower = multi_get(secondary, ASKED)
    assert first["responseCode"] == 1 and first["values"]
    assert (missing["responseCode"], missing["status"]) == (100, 404)
    assert foreign["status"] >= 400 and bad["responseCode"] == 102
    assert lower["values"] == first["values"]


def test_without_identifiers_or_beyond_the_limit_is_refused(secondary: Node) -> None:
    expect(secondary.get("/api/batch/handles"), 400, 4, "handle=")
    too_many = "&".join(f"handle=88.168.1/X{i}" for i in range(MAX_HANDLES + 1))
    expect(secondary.get(f"/api/batch/handles?{too_many}"), 400, 4, str(MAX_HANDLES))


def test_faults_hit_each_identifier_as_its_own_get_would(secondary: Node) -> None:
    other = "88.168.2/PROFILE"
    put_faults(
        secondary,
        [
            {"kind": "error", "route": "/api/handles/*", "prefix": "88.168.1", "responseCode": 3},
            {"kind": "latency", "latencyMs": 150, "prefix": "88.168.2"},
        ],
    )
    began = time.monotonic()
    faulted, fine = multi_get(secondary, [PRODUCT, other])
    assert time.monotonic() - began >= 0.15, "the slowest item's delay holds the answer"
    assert (faulted["responseCode"], faulted["status"]) == (3, 503)
    assert fine["responseCode"] == 1 and fine["values"]
    events = secondary.client.get("/_emulator/faults/log").get_json()["events"]
    assert [(e["kind"], e["handle"]) for e in events] == [("error", PRODUCT), ("latency", other)]
    journal = secondary.client.get("/_emulator/journal").get_json()["entries"]
    assert [e["path"] for e in journal][-1] == "/api/batch/handles", "one request, one entry"

    put_faults(secondary, [{"kind": "outage", "drop": True, "prefix": "88.168.1"}])
    [dropped] = multi_get(secondary, [PRODUCT])
    assert dropped["dropped"] is True and dropped["status"] is None


def test_seeded_faults_fall_on_the_same_identifiers_as_single_gets(secondary: Node) -> None:
    handles = [PRODUCT, "88.168.1/NO-SUCH", "88.168.2/PROFILE"] * 8
    rules = [{"kind": "error", "probability": 0.4, "seed": 11, "responseCode": 3}]
    put_faults(secondary, rules)
    one_by_one = [single(secondary, h)["status"] for h in handles]
    put_faults(secondary, rules)  # the same rules again: their streams start over
    together = [item["status"] for item in multi_get(secondary, handles)]
    assert together == one_by_one
    assert 503 in together and 200 in together


@pytest.mark.parametrize("kind", ["sqlite"])
def test_every_item_counts_as_a_resolution(make_node: Any, kind: str) -> None:
    node: Node = make_node("furniture", kind)

    def resolutions() -> dict[str, int]:
        body = node.client.get("/api/stats").get_json()
        return {r["prefix"]: r["resolutions"] for r in body["prefixes"]}

    before = resolutions()
    multi_get(node, [PRODUCT, PRODUCT, "88.168.2/PROFILE"])
    after = resolutions()
    assert after.get("88.168.1", 0) - before.get("88.168.1", 0) == 2
    assert after.get("88.168.2", 0) - before.get("88.168.2", 0) == 1


def test_a_server_trace_fetches_a_wave_per_node_in_one_request(hierarchy: Hierarchy) -> None:
    hierarchy.upstream.cache.clear()
    body = hierarchy.top.client.get(f"/api/trace/{PRODUCT}").get_json()
    assert body["complete"] and not body["errors"]
    inspection = hierarchy.secondaries["inspection"]
    entries = inspection.client.get("/_emulator/journal").get_json()["entries"]
    fetched = {r["handle"] for r in body["records"] if r["handle"].startswith("88.171.")}
    assert len(fetched) > len(entries) >= 1, "fewer requests than records"
    assert {e["path"] for e in entries} <= {"/api/batch/handles"}


def test_a_server_trace_names_the_records_a_fault_withheld(hierarchy: Hierarchy) -> None:
    timber = hierarchy.secondaries["timber"]
    put_faults(timber, [{"kind": "error", "prefix": "88.169.1", "responseCode": 2}])
    hierarchy.upstream.cache.clear()
    body = hierarchy.top.client.get(f"/api/trace/{PRODUCT}").get_json()
    missing = {e["handle"] for e in body["errors"]}
    assert missing and all(h.startswith("88.169.1/") for h in missing)
    assert any(r["handle"].startswith("88.170.") for r in body["records"]), "the rest is traced"


def test_a_node_without_the_multi_get_is_asked_one_by_one() -> None:
    """A Handle server that is not this emulator answers 404 to the route: GETs instead."""
    plain = Flask("plain")
    asked: list[str] = []

    @plain.get("/api/handles/<path:text>")
    def get(text: str) -> Any:
        asked.append(text)
        if text.endswith("MISSING"):
            return jsonify({"responseCode": 100, "handle": text}), 404
        values = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "x"}}]
        return jsonify({"responseCode": 1, "handle": text, "values": values})

    upstream = Upstream(timeout=5, negative_ttl=5, capacity=100)
    mount_apps(upstream.session, {"http://plain.test": plain})
    found, missing = upstream.fetch_many(
        "http://plain.test", [parse_handle("88.199.1/A"), parse_handle("88.199.1/MISSING")]
    )
    assert isinstance(found, list) and found[0]["type"] == "URL"
    assert isinstance(missing, HandleNotFound)
    assert asked == ["88.199.1/A", "88.199.1/MISSING"]
