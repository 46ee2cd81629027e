"""`idr seed --products N` against a real hierarchy on free ports; the new products resolve."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import requests

from clients.launcher import Hierarchy
from tests.support.trace_chains import run_idr

TIMEOUT = 120


def _idr(hierarchy: Hierarchy, *args: str) -> subprocess.CompletedProcess[str]:
    """`idr --data-dir <the hierarchy's> ...` as a user runs it, without colour."""
    return run_idr(hierarchy.data_dir, *args, timeout=TIMEOUT)


def _top(hierarchy: Hierarchy) -> str:
    return hierarchy.topology.top_level[0].url


def _resolve(hierarchy: Hierarchy, handle: str) -> dict[str, Any]:
    resp = requests.get(f"{_top(hierarchy)}/api/handles/{handle}", timeout=10)
    assert resp.status_code == 200, (handle, resp.status_code, resp.text[:300])
    body: dict[str, Any] = resp.json()
    return body


def test_seed_writes_products_that_resolve_through_the_top_level_node(
    running_hierarchy: Hierarchy,
) -> None:
    result = _idr(running_hierarchy, "seed", "--products", "50", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["products"] == 50
    assert summary["failed"] == 0 and summary["written"] == summary["identifiers"] > 100
    assert set(summary["nodes"]) == {"furniture", "timber", "materials", "inspection"}
    assert summary["identifiers_per_second"] > 0
    print(f"\nidr seed --products 50: {summary['written']} identifiers, "
          f"{summary['identifiers_per_second']} identifiers/s")  # fmt: skip

    first, last = summary["first_product"], summary["last_product"]
    start = summary["start"]
    assert first == f"88.168.1/WARD-X{start:08d}" and last == f"88.168.1/WARD-X{start + 49:08d}"
    for product in (first, last):
        record = _resolve(running_hierarchy, product)
        types = {v["type"]: v for v in record["values"]}
        assert types["IDIS.TEMPLATE"]["data"]["value"] == "furniture.product@1"
        assert types["URL"]["data"]["value"] == f"{_top(running_hierarchy)}/t/{product}"

    # Every TRACE.* edge of the new product resolves on its own node, through the top.
    seen: set[str] = set()
    frontier = [first]
    nodes: set[str] = set()
    while frontier:
        handle = frontier.pop()
        if handle in seen:
            continue
        seen.add(handle)
        nodes.add(handle.split("/")[0].rsplit(".", 1)[0])
        for value in _resolve(running_hierarchy, handle)["values"]:
            if value["type"].startswith("TRACE."):
                frontier.append(value["data"]["value"])
    assert len(seen) >= 15
    assert nodes == {"88.168", "88.169", "88.170", "88.171"}


def test_seeding_again_adds_new_products_without_collisions(running_hierarchy: Hierarchy) -> None:
    before = requests.get(
        f"{running_hierarchy.nodes['furniture'].url}/api/handles",
        params={"prefix": "88.168.1", "pageSize": "1"},
        timeout=10,
    ).json()["totalCount"]
    result = _idr(running_hierarchy, "seed", "--products", "5")
    assert result.returncode == 0, result.stderr
    assert "identifiers/s" in result.stdout and "written" in result.stdout
    after = requests.get(
        f"{running_hierarchy.nodes['furniture'].url}/api/handles",
        params={"prefix": "88.168.1", "pageSize": "1"},
        timeout=10,
    ).json()["totalCount"]
    assert int(after) > int(before)
    # The same serials again are refused item by item (overwrite=false), exit code 1.
    fresh = _idr(running_hierarchy, "seed", "--products", "5", "--start", "0", "--json")
    repeat = _idr(running_hierarchy, "seed", "--products", "5", "--start", "0", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert repeat.returncode == 1
    assert json.loads(repeat.stdout)["failed"] == json.loads(fresh.stdout)["written"]
    assert json.loads(repeat.stdout)["failures"][0]["responseCode"] == 101


def test_seed_without_a_running_hierarchy_says_so(tmp_path: Path) -> None:
    result = run_idr(tmp_path, "seed", "--products", "1", timeout=TIMEOUT)
    assert result.returncode == 1
    assert "hierarchy.json" in result.stderr and "idr up" in result.stderr
