"""Tests of the warehouse scanner against the emulated hierarchy (fixtures: the idr plugin)."""

from __future__ import annotations

import pytest
from warehouse import Warehouse

from clients import trace
from clients.harness import EmulatedHierarchy
from clients.resolver import Resolver

DESK = "88.168.1/SHOP-DESK-0001"  # from seed.json
BOARD = "88.169.1/SHOP-BOARD-0001"


@pytest.fixture
def shop(idr: EmulatedHierarchy) -> Warehouse:
    """The application under test, pointed at the emulated Chongqing node."""
    return Warehouse(idr.top_level[0], session=idr.session)


def test_the_demo_product_resolves(idr: EmulatedHierarchy, idr_resolver: Resolver) -> None:
    record = idr_resolver.resolve(idr.samples["product"])
    assert record.data("URL"), "every demo product carries its consumer page URL at index 1"


def test_our_own_records_come_from_the_seed_file(shop: Warehouse) -> None:
    item = shop.lookup(f"hdl:{DESK}")
    assert (item.status, item.name) == ("ok", "Oak writing desk (demo)")
    assert item.inputs == (BOARD,)


def test_a_code_nobody_registered_is_unknown(shop: Warehouse) -> None:
    assert shop.lookup("88.168.1/NEVER-REGISTERED").status == "unknown"


def test_register_then_scan(idr: EmulatedHierarchy, shop: Warehouse) -> None:
    handle = "88.168.1/SHOP-CHAIR-0001"
    resp = idr.session.put(
        f"{idr.url('furniture')}/api/handles/{handle}",
        json={"values": [{"index": 2000, "type": "name", "data": "Oak chair (demo)"}]},
        auth=idr.credentials("88.168.1"),
        timeout=5,
    )
    assert resp.status_code == 201, resp.text
    assert shop.lookup(handle).name == "Oak chair (demo)"


def test_our_desk_traces_across_two_nodes(idr: EmulatedHierarchy) -> None:
    found = trace(DESK, idr.new_resolver(mode="iterative"), enterprises=False)
    assert found.complete
    assert {r.handle for r in found.records} == {DESK, BOARD}
    assert {r.node for r in found.records} == {idr.url("furniture"), idr.url("timber")}


@pytest.mark.idr_fault("furniture", kind="outage")
def test_the_scanner_says_unavailable_when_the_furniture_node_is_down(shop: Warehouse) -> None:
    assert shop.lookup("88.168.1/SHOP-DESK-0002").status == "unavailable"


@pytest.mark.idr_fault("cq-top", kind="outage")
def test_chengdu_answers_when_chongqing_is_down(
    idr: EmulatedHierarchy, idr_resolver: Resolver
) -> None:
    record = idr_resolver.resolve(DESK)
    assert record.served_by == idr.url("cd-backup")


def test_the_counters_move_when_we_resolve(idr: EmulatedHierarchy) -> None:
    stats_url = f"{idr.url('furniture')}/api/stats"
    before = idr.session.get(stats_url, timeout=5).json()["resolutions"]
    for _ in range(3):
        idr.session.get(f"{idr.url('furniture')}/api/handles/{DESK}", timeout=5)
    after = idr.session.get(stats_url, timeout=5).json()["resolutions"]
    assert after == before + 3


def test_reset_restores_the_seed(idr: EmulatedHierarchy, shop: Warehouse) -> None:
    handle = "88.168.1/SHOP-LAMP-0001"
    idr.session.put(
        f"{idr.url('furniture')}/api/handles/{handle}",
        json={"values": [{"index": 2000, "type": "name", "data": "Desk lamp (demo)"}]},
        auth=idr.credentials("furniture"),
        timeout=5,
    )
    idr.reset()
    assert shop.lookup(handle).status == "unknown"
    assert shop.lookup(DESK).status == "ok", "the seed file is loaded again after a reset"
