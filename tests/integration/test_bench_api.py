"""The benchmark routes (idcore/bench_api.py): off by default, and what bench/ relies on."""

from __future__ import annotations

import json
from typing import Any

from idcore.bench_api import FIXED_HANDLE, FIXED_PATH
from tests.integration.conftest import PRODUCT, Hierarchy


def test_bench_routes_are_off_unless_asked_for(make_node: Any) -> None:
    node = make_node("furniture")
    assert node.client.get(FIXED_PATH).status_code == 404
    assert node.client.post("/_emulator/bench/cache/clear").status_code == 404


def test_fixed_answer_is_a_handle_record_answer(make_node: Any) -> None:
    node = make_node("furniture", bench_endpoints=True)
    resp = node.client.get(FIXED_PATH)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = json.loads(resp.get_data(as_text=True))
    assert (body["responseCode"], body["handle"]) == (1, FIXED_HANDLE)
    # As big as a real product answer, so the ceiling is a fair comparison.
    real = node.client.get(f"/api/handles/{PRODUCT}").get_data()
    assert 0.5 < len(resp.get_data()) / len(real) < 2
    assert {v["type"] for v in body["values"]} >= {"URL", "HS_ADMIN", "IDIS.TEMPLATE"}


def test_info_and_cache_clear_on_the_top_level_node(hierarchy: Hierarchy, make_node: Any) -> None:
    top = make_node("cq-top", bench_endpoints=True)
    top.app.extensions["idr.upstream"] = hierarchy.upstream  # routed into the secondaries
    assert top.client.get(f"/api/handles/{PRODUCT}").status_code == 200
    info = top.client.get("/_emulator/bench/info").get_json()
    assert info["node"] == "cq-top" and info["records"] > 0
    assert info["cache"]["size"] >= 1 and info["cache"]["misses"] >= 1
    cleared = top.client.post("/_emulator/bench/cache/clear").get_json()
    assert cleared["cleared"] == info["cache"]["size"]
    assert top.client.get("/_emulator/bench/info").get_json()["cache"]["size"] == 0


def test_secondary_node_info_has_no_cache(make_node: Any) -> None:
    node = make_node("furniture", bench_endpoints=True)
    info = node.client.get("/_emulator/bench/info").get_json()
    assert info["cache"] is None and info["records"] > 0
