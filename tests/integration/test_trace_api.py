"""`GET /api/trace/<id>` and the consumer page `/t/<id>` on the top-level node, in-process.

The top-level node traces through its own prefix registry and Upstream, whose session is
routed into the secondary-node apps; chains are registered through the REST API with
relation names of the user's own and no template.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import requests

from clients.resolver import Resolver
from clients.trace_result import trace_schema
from clients.tracer import trace
from clients.transport import mount_apps
from idcore.settings import NodeSettings, demo_admin_secret
from tests.integration.conftest import TOP_ADMIN, Hierarchy, Node, expect
from tests.support.hierarchy import free_ports

PREFIX_OF = {
    "furniture": "88.168",
    "timber": "88.169",
    "materials": "88.170",
    "inspection": "88.171",
    "power": "88.172",
    "auto": "88.173",
}


def _admin(node: str) -> tuple[str, str]:
    return (f"300:{PREFIX_OF[node]}/ADMIN", demo_admin_secret(node))


def _node_of(handle: str) -> str:
    head = ".".join(handle.split("/", 1)[0].split(".")[:2])
    return next(name for name, prefix in PREFIX_OF.items() if prefix == head)


def register(h: Hierarchy, handle: str, *values: tuple[str, str]) -> None:
    """PUT a record of (type, data) pairs at the node that homes it, items from 2000 on."""
    body: list[dict[str, Any]] = [
        {"index": 1, "type": "URL", "data": f"http://top.example/t/{handle}"}
    ]
    for offset, (vtype, data) in enumerate(values):
        body.append({"index": 2000 + offset, "type": vtype, "data": data})
    node = _node_of(handle)
    resp = h.secondaries[node].put(handle, {"values": body}, auth=_admin(node))
    assert resp.status_code in (200, 201), resp.get_json()


def api_trace(top: Node, handle: str, query: str = "") -> dict[str, Any]:
    """The trace JSON, checked against the documented schema."""
    resp = top.client.get(f"/api/trace/{handle}{query}")
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    jsonschema.validate(body, trace_schema())
    return body


def handles(body: dict[str, Any]) -> list[str]:
    return [r["handle"] for r in body["records"]]


@pytest.fixture
def chain(hierarchy: Hierarchy) -> Hierarchy:
    """A desk across four nodes, a cycle back to it, and a second desk sharing its plank lot."""
    register(
        hierarchy,
        "88.168.1/T-DESK-1",
        ("name", "书桌（演示） / desk (demo)"),
        ("made_on", "2024-06-01"),
        ("TRACE.ANYTHING", "88.169.1/T-PLANK-1"),
        ("TRACE.INPUT", "88.170.1/T-HINGE-1"),
        ("TRACE.INSPECTION", "88.171.1/T-RPT-1"),
    )
    register(
        hierarchy,
        "88.169.1/T-PLANK-1",
        ("name", "plank lot"),
        ("sawn_on", "2024-04-02"),
        ("TRACE.ORIGIN", "88.169.2/T-LOG-1"),
    )
    register(
        hierarchy,
        "88.169.2/T-LOG-1",
        ("name", "log lot"),
        ("felled", "2024-01-15"),
        ("TRACE.ANYTHING", "88.168.1/T-DESK-1"),  # a cycle back to the root
    )
    register(hierarchy, "88.170.1/T-HINGE-1", ("name", "hinge lot"))
    register(
        hierarchy,
        "88.171.1/T-RPT-1",
        ("name", "formaldehyde report"),
        ("standard", "GB 18584-2001"),
        ("result", "合格 / pass"),
        ("certificate_no", "CQ-2024-0042"),
        ("tested_on", "2024-06-03"),
    )
    register(
        hierarchy,
        "88.168.1/T-DESK-2",
        ("name", "second desk"),
        ("TRACE.INPUT", "88.169.1/t-plank-1"),  # the same lot, spelled in lower case
    )
    return hierarchy


def test_a_chain_with_own_relations_and_no_template_traces(chain: Hierarchy) -> None:
    body = api_trace(chain.top, "88.168.1/T-DESK-1")
    assert body["complete"] is True and body["errors"] == []
    assert handles(body) == [
        "88.168.1/T-DESK-1",
        "88.169.1/T-PLANK-1",
        "88.170.1/T-HINGE-1",
        "88.171.1/T-RPT-1",
        "88.169.2/T-LOG-1",
    ]
    by_handle = {r["handle"]: r for r in body["records"]}
    plank = by_handle["88.169.1/T-PLANK-1"]
    assert plank["relation"] == "TRACE.ANYTHING" and plank["parent"] == "88.168.1/T-DESK-1"
    assert plank["stage"] == "other" and plank["template"] is None
    assert plank["items"] == {"name": "plank lot", "sawn_on": "2024-04-02"}
    assert plank["time"] == "2024-04-02" and plank["depth"] == 1
    assert by_handle["88.171.1/T-RPT-1"]["stage"] == "inspection"
    assert by_handle["88.168.1/T-DESK-1"]["stage"] == "product"
    # Each record names the secondary node that holds it, and the node is described.
    topology = NodeSettings(node="cq-top").load_topology()
    assert plank["node"] == topology.node("timber").url
    nodes = {n["url"]: n for n in body["nodes"]}
    assert {n["name"] for n in nodes.values()} == {"furniture", "timber", "materials", "inspection"}
    assert nodes[topology.node("timber").url]["prefix"] == "88.169"
    assert nodes[topology.node("timber").url]["records"] == 2
    assert body["stats"]["records"] == 5 and body["stats"]["waves"] >= 3


def test_a_cycle_and_a_shared_lot_give_each_record_once(chain: Hierarchy) -> None:
    body = api_trace(chain.top, "88.168.1/T-DESK-1")
    assert len(handles(body)) == len(set(handles(body))) == 5
    assert {
        "from": "88.169.2/T-LOG-1",
        "to": "88.168.1/T-DESK-1",
        "relation": "TRACE.ANYTHING",
    } in (body["edges"])
    second = api_trace(chain.top, "88.168.1/T-DESK-2")
    assert handles(second) == [
        "88.168.1/T-DESK-2",
        "88.169.1/t-plank-1",  # as first spelled: handles match case-insensitively
        "88.169.2/T-LOG-1",
        "88.168.1/T-DESK-1",  # through the cycle: the first desk is part of this trace too
        "88.170.1/T-HINGE-1",
        "88.171.1/T-RPT-1",
    ]
    assert second["complete"] is True


def test_a_diamond_fetches_the_shared_record_once(hierarchy: Hierarchy) -> None:
    register(
        hierarchy,
        "88.168.1/T-CHAIR",
        ("TRACE.INPUT", "88.170.1/T-LEG"),
        ("TRACE.INPUT", "88.170.2/T-SEAT"),
    )
    register(hierarchy, "88.170.1/T-LEG", ("TRACE.INPUT", "88.169.1/T-BEECH"))
    register(hierarchy, "88.170.2/T-SEAT", ("TRACE.INPUT", "88.169.1/T-BEECH"))
    register(hierarchy, "88.169.1/T-BEECH", ("name", "beech lot"))
    body = api_trace(hierarchy.top, "88.168.1/T-CHAIR")
    assert handles(body).count("88.169.1/T-BEECH") == 1 and len(handles(body)) == 4
    into_beech = [e["from"] for e in body["edges"] if e["to"] == "88.169.1/T-BEECH"]
    assert into_beech == ["88.170.1/T-LEG", "88.170.2/T-SEAT"]


def test_missing_and_malformed_targets_make_a_partial_trace(hierarchy: Hierarchy) -> None:
    register(
        hierarchy,
        "88.168.1/T-BED",
        ("TRACE.INPUT", "88.170.1/T-NOPE"),
        ("TRACE.INPUT", "not an identifier/"),
        ("TRACE.INPUT", "88.169.1/T-SLAT"),
    )
    register(hierarchy, "88.169.1/T-SLAT", ("name", "slats"))
    body = api_trace(hierarchy.top, "88.168.1/T-BED")
    assert body["complete"] is False
    assert handles(body) == ["88.168.1/T-BED", "88.169.1/T-SLAT"]
    errors = {e["handle"]: e for e in body["errors"]}
    assert errors["88.170.1/T-NOPE"]["reason"] == "not_found"
    assert errors["88.170.1/T-NOPE"]["responseCode"] == 100
    assert errors["88.170.1/T-NOPE"]["parent"] == "88.168.1/T-BED"
    assert errors["not an identifier/"]["reason"] == "invalid"


def test_an_unreachable_node_is_named_and_the_rest_is_traced(hierarchy: Hierarchy) -> None:
    (port,) = free_ports(1)  # nothing listens there
    site = {
        "index": 1,
        "type": "HS_SITE",
        "data": {
            "format": "site",
            "value": {
                "version": 1,
                "primarySite": True,
                "attributes": [{"name": "baseUrl", "value": f"http://127.0.0.1:{port}"}],
                "servers": [{"serverId": 1, "address": "127.0.0.1", "interfaces": []}],
            },
        },
    }
    resp = hierarchy.top.put("0.NA/88.199", {"values": [site]}, auth=TOP_ADMIN)
    assert resp.status_code in (200, 201), resp.get_json()
    register(
        hierarchy,
        "88.168.1/T-SOFA",
        ("TRACE.INPUT", "88.199.1/FOAM-1"),
        ("TRACE.INPUT", "88.169.1/T-FRAME"),
    )
    register(hierarchy, "88.169.1/T-FRAME", ("name", "frame"))
    body = api_trace(hierarchy.top, "88.168.1/T-SOFA")
    assert handles(body) == ["88.168.1/T-SOFA", "88.169.1/T-FRAME"]
    (missing,) = body["errors"]
    assert missing["handle"] == "88.199.1/FOAM-1"
    assert missing["reason"] == "unreachable"
    assert missing["node"] == f"http://127.0.0.1:{port}"


def test_limits_are_respected_and_reported(chain: Hierarchy) -> None:
    body = api_trace(chain.top, "88.168.1/T-DESK-1", "?depth=1")
    assert max(r["depth"] for r in body["records"]) == 1
    assert body["errors"] == [
        {
            "handle": "88.169.2/T-LOG-1",
            "reason": "depth_limit",
            "responseCode": None,
            "node": None,
            "message": "deeper than the depth limit 1: not fetched",
            "depth": 2,
            "parent": "88.169.1/T-PLANK-1",
            "relation": "TRACE.ORIGIN",
            "elapsedMs": 0.0,
        }
    ]
    small = api_trace(chain.top, "88.168.1/T-DESK-1", "?maxRecords=2")
    assert len(small["records"]) == 2
    assert {e["reason"] for e in small["errors"]} == {"record_limit"}


def test_invalid_and_unknown_identifiers(hierarchy: Hierarchy) -> None:
    expect(hierarchy.top.client.get("/api/trace/88.168.1/"), 400, 102, "suffix")
    expect(hierarchy.top.client.get("/api/trace/88.168.1/T-NEVER"), 404, 100, "T-NEVER")
    expect(hierarchy.top.client.get("/api/trace/88.168.1/X?deadline=99"), 400, 4, "deadline")


def test_the_library_traces_through_the_top_level_node(chain: Hierarchy) -> None:
    topology = NodeSettings(node="cq-top").load_topology()
    apps = {topology.node("cq-top").url: chain.top.app}
    apps.update({topology.node(n).url: node.app for n, node in chain.secondaries.items()})
    session = mount_apps(requests.Session(), apps)
    with Resolver(topology.node("cq-top").url, mode="iterative", session=session) as resolver:
        result = trace("hdl:88.168.1/T-DESK-1", resolver)
    assert result.complete
    assert [r.handle for r in result.records] == handles(api_trace(chain.top, "88.168.1/T-DESK-1"))
    assert result.record("88.169.2/t-log-1") is not None
    assert result.records[1].node == topology.node("timber").url
    assert [r.handle for r in result.timeline()] == [
        "88.169.2/T-LOG-1",
        "88.169.1/T-PLANK-1",
        "88.168.1/T-DESK-1",
        "88.171.1/T-RPT-1",
    ]
    jsonschema.validate(result.to_json(), trace_schema())


# --- the consumer page ------------------------------------------------------------------


def test_consumer_page_shows_the_chain_in_both_languages(chain: Hierarchy) -> None:
    zh = chain.top.client.get("/t/88.168.1/T-DESK-1", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200 and zh.mimetype == "text/html"
    page = zh.get_data(as_text=True)
    for text in ("书桌（演示）", "质量检验", "GB 18584-2001", "合格", "CQ-2024-0042", "演示数据"):
        assert text in page, text
    assert "desk (demo)" not in page
    en = chain.top.client.get("/t/88.168.1/T-DESK-1", headers={"Accept-Language": "en-US,en"})
    page = en.get_data(as_text=True)
    for text in ("desk (demo)", "Inspection", "pass", "DEMO DATA", "timber and panels node"):
        assert text in page, text
    forced = chain.top.client.get("/t/88.168.1/T-DESK-1?lang=zh", headers={"Accept-Language": "en"})
    assert "质量检验" in forced.get_data(as_text=True)
    assert "http" not in page.split("<body>", 1)[1].split("</style>")[0]  # no external asset


def test_consumer_page_errors_are_pages(hierarchy: Hierarchy) -> None:
    bad = hierarchy.top.client.get("/t/88.168.1/?lang=en")
    assert bad.status_code == 400 and bad.mimetype == "text/html"
    assert "Not a valid identifier" in bad.get_data(as_text=True)
    unknown = hierarchy.top.client.get("/t/88.168.1/T-NEVER?lang=zh")
    assert unknown.status_code == 404 and unknown.mimetype == "text/html"
    assert "未找到该标识" in unknown.get_data(as_text=True)
