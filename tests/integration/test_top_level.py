"""The top-level node (cq-top) over six secondary nodes: recursion, cache, referral, registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idcore.settings import NodeSettings
from secondary_nodes.app import create_app as create_secondary
from tests.integration.conftest import (
    ENTERPRISE_1,
    NODE_ADMIN,
    PRODUCT,
    SECONDARIES,
    TOP_ADMIN,
    Hierarchy,
    Node,
    expect,
    unchanged,
)
from tests.support.redis_server import _free_port

FURNITURE_URL = "http://127.0.0.1:8101"


def _value(index: int, vtype: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}, **extra}


def _site(base_url: str | None, host: str = "127.0.0.1", port: int = 80) -> dict[str, Any]:
    """An HS_SITE value as a registrar would write it."""
    attributes = [{"name": "desc", "value": "new secondary node (test)"}]
    if base_url:
        attributes.append({"name": "baseUrl", "value": base_url})
    return {
        "index": 1,
        "type": "HS_SITE",
        "data": {
            "format": "site",
            "value": {
                "version": 1,
                "protocolVersion": "2.10",
                "serialNumber": 1,
                "primarySite": True,
                "multiPrimary": False,
                "attributes": attributes,
                "servers": [
                    {
                        "serverId": 1,
                        "address": host,
                        "interfaces": [
                            {"query": True, "admin": True, "protocol": "HTTP", "port": port}
                        ],
                    }
                ],
            },
        },
    }


def _admin(handle: str) -> dict[str, Any]:
    return {
        "index": 100,
        "type": "HS_ADMIN",
        "data": {"format": "admin", "value": {"handle": handle, "index": 300}},
    }


def _first_item(node: Node) -> str:
    """A demo identifier of the node's first enterprise (not its admin handle)."""
    prefix = node.app.config["IDR_NODE"]["prefix"]
    handles: list[str] = node.get(f"/api/handles?prefix={prefix}.1").get_json()["handles"]
    return next(h for h in handles if not h.endswith("/ADMIN"))


# --- recursion -------------------------------------------------------------------------


def test_recursion_answers_each_secondarys_record(hierarchy: Hierarchy) -> None:
    for name in SECONDARIES:
        node = hierarchy.secondaries[name]
        handle = _first_item(node)
        direct = expect(node.get(handle), 200, 1)
        via_top = expect(hierarchy.top.get(handle), 200, 1)
        assert via_top == direct, name
        assert via_top["handle"] == handle


def test_recursion_applies_the_filters(hierarchy: Hierarchy) -> None:
    for query in ["?index=1", "?index=1&index=2001", "?type=model&type=URL", "?type=HS_ADMIN"]:
        direct = hierarchy.secondaries["furniture"].get(PRODUCT + query).get_json()
        assert expect(hierarchy.top.get(PRODUCT + query), 200, 1) == direct, query
        assert len(direct["values"]) < 6


def test_recursion_without_matching_values_is_200_200(hierarchy: Hierarchy) -> None:
    body = expect(hierarchy.top.get(PRODUCT + "?type=NOPE"), 200, 200)
    assert body["values"] == []


def test_recursion_echoes_the_handle_as_sent(hierarchy: Hierarchy) -> None:
    body = expect(hierarchy.top.get("88.168.1/ward-2024-000123"), 200, 1)
    assert body["handle"] == "88.168.1/ward-2024-000123"


def test_recursion_never_shows_secrets(hierarchy: Hierarchy) -> None:
    body = expect(hierarchy.top.get("88.168.1/ADMIN"), 200, 1)
    assert [v["type"] for v in body["values"]] == ["DESC", "HS_ADMIN", "HS_SIGNATURE"]
    assert expect(hierarchy.top.get("88.168.1/ADMIN?index=300"), 200, 200)["values"] == []


def test_recursion_reaches_an_enterprise_prefix_record(hierarchy: Hierarchy) -> None:
    direct = hierarchy.secondaries["furniture"].get("0.NA/88.168.1").get_json()
    assert expect(hierarchy.top.get("0.NA/88.168.1"), 200, 1) == direct
    assert expect(hierarchy.top.get("88.168.1"), 200, 1)["values"] == direct["values"]


def test_recursion_not_found_is_404_100(hierarchy: Hierarchy) -> None:
    body = expect(hierarchy.top.get("88.168.1/NOPE"), 404, 100, "not found")
    assert body["handle"] == "88.168.1/NOPE"


def test_special_characters_in_the_suffix_reach_the_secondary(hierarchy: Hierarchy) -> None:
    furniture = hierarchy.secondaries["furniture"]
    for suffix, path in [
        ("A?B", "A%3FB"),
        ("A#B", "A%23B"),
        ("50%", "50%25"),
        ("A%41", "A%2541"),
        ("A B+C", "A%20B+C"),
        ("衣柜/1", "%E8%A1%A3%E6%9F%9C/1"),
    ]:
        expect(furniture.put(f"88.168.1/{path}", [_value(1, "URL", suffix)]), 201, 1)
        body = expect(hierarchy.top.get(f"88.168.1/{path}"), 200, 1)
        assert body["handle"] == f"88.168.1/{suffix}"
        assert body["values"][0]["data"]["value"] == suffix


# --- cache ----------------------------------------------------------------------------


def test_second_request_is_served_from_the_cache(hierarchy: Hierarchy) -> None:
    stats = hierarchy.upstream.cache.stats
    first = expect(hierarchy.top.get(PRODUCT), 200, 1)
    hits, misses = stats.hits, stats.misses
    assert expect(hierarchy.top.get(PRODUCT), 200, 1) == first
    assert (stats.hits, stats.misses) == (hits + 1, misses)
    # Other spellings and filters are answered from the same cached record.
    expect(hierarchy.top.get("88.168.1/ward-2024-000123?index=1"), 200, 1)
    assert (stats.hits, stats.misses) == (hits + 2, misses)


def test_cache_serves_the_old_record_until_auth_true_bypasses_it(hierarchy: Hierarchy) -> None:
    furniture = hierarchy.secondaries["furniture"]
    stats = hierarchy.upstream.cache.stats
    expect(hierarchy.top.get(PRODUCT), 200, 1)
    moved = _value(1, "URL", "http://127.0.0.1:8000/t/moved")
    expect(furniture.put(PRODUCT, [moved], query="?index=1"), 200, 1)

    stale = hierarchy.top.get(PRODUCT + "?index=1").get_json()["values"][0]["data"]["value"]
    assert stale == "http://127.0.0.1:8000/t/88.168.1/WARD-2024-000123"

    hits = stats.hits
    fresh = expect(hierarchy.top.get(PRODUCT + "?index=1&auth=true"), 200, 1)
    assert fresh["values"][0]["data"]["value"] == "http://127.0.0.1:8000/t/moved"
    assert stats.hits == hits  # not from the cache
    # The fresh answer replaced the cached one.
    after = hierarchy.top.get(PRODUCT + "?index=1").get_json()["values"][0]["data"]["value"]
    assert after == "http://127.0.0.1:8000/t/moved"
    assert stats.hits == hits + 1


def test_cache_keeps_a_record_for_its_shortest_ttl(hierarchy: Hierarchy) -> None:
    furniture = hierarchy.secondaries["furniture"]
    values = [_value(1, "URL", "v1", ttl=60), _value(2, "DESC", "d", ttl=3600)]
    expect(furniture.put("88.168.1/SHORT", values), 201, 1)
    expect(hierarchy.top.get("88.168.1/SHORT"), 200, 1)
    expect(
        furniture.put("88.168.1/SHORT", [_value(1, "URL", "v2", ttl=60)], query="?index=1"), 200, 1
    )

    hierarchy.clock.advance(59)
    assert hierarchy.top.values("88.168.1/SHORT")[1]["data"]["value"] == "v1"
    hierarchy.clock.advance(1)
    assert hierarchy.top.values("88.168.1/SHORT")[1]["data"]["value"] == "v2"


def test_not_found_is_cached_briefly_then_fetched_again(hierarchy: Hierarchy) -> None:
    furniture = hierarchy.secondaries["furniture"]
    stats = hierarchy.upstream.cache.stats
    negative_ttl = hierarchy.top.app.extensions["idr.settings"].negative_ttl
    assert 0 < negative_ttl < 60

    expect(hierarchy.top.get("88.168.1/LATER"), 404, 100)
    expect(furniture.put("88.168.1/LATER", [_value(1, "URL", "now here")]), 201, 1)

    hits = stats.hits
    expect(hierarchy.top.get("88.168.1/LATER"), 404, 100)  # the cached "not found"
    assert stats.hits == hits + 1

    hierarchy.clock.advance(negative_ttl)
    body = expect(hierarchy.top.get("88.168.1/LATER"), 200, 1)
    assert body["values"][0]["data"]["value"] == "now here"


def test_auth_true_also_bypasses_a_cached_not_found(hierarchy: Hierarchy) -> None:
    furniture = hierarchy.secondaries["furniture"]
    expect(hierarchy.top.get("88.168.1/LATER-2"), 404, 100)
    expect(furniture.put("88.168.1/LATER-2", [_value(1, "URL", "x")]), 201, 1)
    expect(hierarchy.top.get("88.168.1/LATER-2?auth=true"), 200, 1)
    expect(hierarchy.top.get("88.168.1/LATER-2"), 200, 1)


# --- referral ---------------------------------------------------------------------------


def test_recursion_false_refers_with_the_hs_site_values(hierarchy: Hierarchy) -> None:
    stats = hierarchy.upstream.cache.stats
    before = (stats.hits, stats.misses)
    resp = hierarchy.top.get(PRODUCT + "?recursion=false")
    body = expect(resp, 300, 303, "88.168", FURNITURE_URL)
    assert body["handle"] == PRODUCT
    sites = hierarchy.top.get("0.NA/88.168?type=HS_SITE").get_json()["values"]
    assert body["values"] == sites
    assert [v["type"] for v in body["values"]] == ["HS_SITE"]
    attributes = {a["name"]: a["value"] for a in body["values"][0]["data"]["value"]["attributes"]}
    assert attributes["baseUrl"] == FURNITURE_URL
    assert (stats.hits, stats.misses) == before  # the secondary was not asked


def test_recursion_false_with_do_not_refer_is_400_301(hierarchy: Hierarchy) -> None:
    body = expect(
        hierarchy.top.get(PRODUCT + "?recursion=false&doNotRefer=true"), 400, 301, "doNotRefer"
    )
    assert body["handle"] == PRODUCT


def test_referral_for_each_secondary(hierarchy: Hierarchy) -> None:
    topology = NodeSettings(node="cq-top").load_topology()
    for name in SECONDARIES:
        spec = topology.node(name)
        body = expect(hierarchy.top.get(f"{spec.prefix}.1/X?recursion=false"), 300, 303)
        site = body["values"][0]["data"]["value"]
        assert {"name": "baseUrl", "value": spec.url} in site["attributes"]


def test_a_delegated_prefix_record_is_answered_locally(hierarchy: Hierarchy) -> None:
    stats = hierarchy.upstream.cache.stats
    before = (stats.hits, stats.misses)
    for path in ["0.NA/88.168", "88.168", "0.na/88.168"]:
        body = expect(hierarchy.top.get(path), 200, 1)
        assert body["handle"] == path
        by_type = {v["type"]: v for v in body["values"]}
        site = by_type["HS_SITE"]
        assert site["index"] == 1
        assert {"name": "baseUrl", "value": FURNITURE_URL} in site["data"]["value"]["attributes"]
        assert by_type["HS_ADMIN"]["data"]["value"]["handle"] == "88.168/ADMIN"
    assert (stats.hits, stats.misses) == before  # no secondary was asked


def test_the_top_levels_own_prefix_record_hides_its_secret(hierarchy: Hierarchy) -> None:
    body = expect(hierarchy.top.get("0.NA/88"), 200, 1)
    assert 300 not in [v["index"] for v in body["values"]]


def test_unknown_prefix_is_400_301(hierarchy: Hierarchy) -> None:
    for path in ["88.999.1/X", "88.999/X", "20.500.12345/X", "88/X", "99.1/X"]:
        body = expect(hierarchy.top.get(path), 400, 301)
        assert body["handle"] == path


def test_unregistered_prefix_record_is_404_100(hierarchy: Hierarchy) -> None:
    expect(hierarchy.top.get("0.NA/88.999"), 404, 100)


def test_malformed_identifier_at_the_top_is_400_102(hierarchy: Hierarchy) -> None:
    expect(hierarchy.top.get("88.168.1/A%00B"), 400, 102, "control character")
    expect(hierarchy.top.get("88..168/X"), 400, 102, "invalid segment")


def test_unknown_path_at_the_top_is_404_4(hierarchy: Hierarchy) -> None:
    expect(hierarchy.top.call("GET", "/api/nope"), 404, 4)


# --- writes at the top ---------------------------------------------------------------------


DELEGATED_WRITES = [
    ("PUT", "88.168.1/NEW", ""),
    ("PUT", PRODUCT, "?index=1"),
    ("PUT", "0.NA/88.168.1", ""),
    ("PUT", "88.168.1", "?index=1"),
    ("PUT", "88.168.1/", "?mintNewSuffix=true"),
    ("DELETE", PRODUCT, ""),
    ("DELETE", "0.NA/88.168.1", ""),
]


@pytest.mark.parametrize("identity", [TOP_ADMIN, ENTERPRISE_1, None])
def test_write_under_a_delegated_prefix_is_400_301_never_a_redirect(
    hierarchy: Hierarchy, identity: tuple[str, str] | None
) -> None:
    furniture = hierarchy.secondaries["furniture"]
    for method, path, query in DELEGATED_WRITES:
        with unchanged(hierarchy.top, furniture):
            if method == "PUT":
                resp = hierarchy.top.put(path, [_value(1, "URL", "x")], auth=identity, query=query)
            else:
                resp = hierarchy.top.delete(path, auth=identity, query=query)
        assert not 300 <= resp.status_code < 400, (method, path)
        assert "Location" not in resp.headers
        expect(resp, 400, 301, FURNITURE_URL, "write it there")


def test_write_of_an_unknown_identifier_at_the_top_is_400_301(hierarchy: Hierarchy) -> None:
    with unchanged(hierarchy.top):
        expect(hierarchy.top.put("88.999.1/X", [_value(1, "URL", "x")], auth=TOP_ADMIN), 400, 301)


def test_only_the_top_level_admin_registers_prefixes(hierarchy: Hierarchy) -> None:
    refusals: list[tuple[tuple[str, str] | None, int, int]] = [
        (None, 401, 402),
        (NODE_ADMIN, 403, 404),  # not an identity the top-level node knows
        (ENTERPRISE_1, 403, 404),
        (("300:0.NA/88", "wrong"), 403, 403),
    ]
    for identity, status, code in refusals:
        with unchanged(hierarchy.top):
            resp = hierarchy.top.put("0.NA/88.199", [_site("http://127.0.0.1:8199")], auth=identity)
        expect(resp, status, code)


def _new_secondary(tmp_path: Path, prefix: str, port: int) -> Node:
    """A secondary node for a prefix outside the default topology (no demo seed)."""
    settings = NodeSettings(
        node="furniture", prefix=prefix, port=port, seed="none", data_dir=tmp_path / prefix
    )
    app = create_secondary(settings)
    return Node("new", app, app.extensions["idr.records"].store)


def test_registering_a_new_secondary_prefix_makes_it_resolvable(
    hierarchy: Hierarchy, tmp_path: Path
) -> None:
    top = hierarchy.top
    expect(top.get("88.199.1/X"), 400, 301)

    new = _new_secondary(tmp_path, "88.199", 8199)
    hierarchy.mount("http://127.0.0.1:8199", new.app)
    admin = ("300:88.199/ADMIN", "demo-furniture-admin")
    expect(new.put("88.199.1/X", [_value(1, "URL", "http://x/199")], auth=admin), 201, 1)

    values = [_site("http://127.0.0.1:8199"), _admin("88.199/ADMIN"), _value(2, "DESC", "new")]
    assert expect(top.put("0.NA/88.199", values, auth=TOP_ADMIN), 201, 1)["handle"] == "0.NA/88.199"

    assert expect(top.get("88.199"), 200, 1)["values"][0]["type"] == "HS_SITE"
    body = expect(top.get("88.199.1/X"), 200, 1)
    assert body == new.get("88.199.1/X").get_json()
    referral = expect(top.get("88.199.1/X?recursion=false"), 300, 303)
    assert referral["values"][0]["data"]["value"]["attributes"][-1]["value"] == (
        "http://127.0.0.1:8199"
    )
    # A write for it at the top now says where it belongs.
    expect(top.put("88.199.1/Y", [_value(1, "URL", "y")], auth=TOP_ADMIN), 400, 301, "8199")

    # Withdrawing the delegation makes the top-level node not responsible again.
    expect(top.delete("0.NA/88.199", auth=TOP_ADMIN), 200, 1)
    expect(top.get("88.199.1/X?auth=true"), 400, 301)


def test_a_stopped_site_answers_502_json(hierarchy: Hierarchy) -> None:
    port = _free_port()  # nothing listens there
    site = _site(None, host="127.0.0.1", port=port)  # reached by address and port
    expect(hierarchy.top.put("0.NA/88.198", [site], auth=TOP_ADMIN), 201, 1)

    for _ in range(2):  # a failure is not cached as "not found"
        resp = hierarchy.top.get("88.198.1/X", allow_5xx=True)
        assert resp.status_code == 502
        body = resp.get_json()
        assert body["handle"] == "88.198.1/X"
        assert f"127.0.0.1:{port}" in body["message"]
        assert "unreachable" in body["message"]


def test_errors_of_the_secondary_pass_through_as_json(hierarchy: Hierarchy) -> None:
    # Point 88.168 at the timber node: it answers 301 for 88.168.* identifiers.
    timber = NodeSettings(node="timber").load_topology().node("timber").url
    expect(
        hierarchy.top.put("0.NA/88.168", [_site(timber)], auth=TOP_ADMIN, query="?index=1"), 200, 1
    )
    expect(hierarchy.top.get(PRODUCT), 400, 301, timber)
