"""The demo supply chain, pure: deterministic, well-formed, shared lots, time order, trace size."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

import pytest

from idcore.demo import (
    DEMO_TEMPLATES,
    DemoData,
    Pairs,
    build_demo,
    extra_products,
    templates_for,
)
from idcore.identifier import fold
from idcore.stages import TEMPLATE_STAGES, stage_of, template_family
from idcore.store import Record
from idcore.template import check_record
from idcore.topology import Topology, load_topology

TOP = "http://top.example:8000"
FURNITURE_CHAIN = {"88.168", "88.169", "88.170", "88.171"}


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology()


@pytest.fixture(scope="module")
def demo(topology: Topology) -> DemoData:
    return build_demo(topology, 2024, TOP)


def _items(values: list[dict[str, Any]]) -> dict[str, str]:
    return {v["type"]: v["data"]["value"] for v in values if 2000 <= v["index"] < 3000}


def _edges(values: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(v["type"], v["data"]["value"]) for v in values if v["type"].startswith("TRACE.")]


def _template(values: list[dict[str, Any]]) -> str:
    return next(str(v["data"]["value"]) for v in values if v["index"] == 1001)


def _closure(records: dict[str, list[dict[str, Any]]], start: str) -> set[str]:
    """Every identifier reachable from `start` by following every TRACE.* value."""
    seen: set[str] = set()
    frontier = [start]
    while frontier:
        handle = frontier.pop()
        if handle in seen:
            continue
        seen.add(handle)
        frontier.extend(t for _, t in _edges(records[handle]))
    return seen


def _node_prefix(handle: str) -> str:
    return handle.split("/", 1)[0].rsplit(".", 1)[0]


def _date(records: dict[str, list[dict[str, Any]]], handle: str) -> str:
    """The event date of a record: harvest, production, inspection or finish."""
    items = _items(records[handle])
    for code in ("harvest_date", "produced_at", "inspected_at", "tested_at", "ended_at",
                 "finished_at", "established"):  # fmt: skip
        if code in items:
            return items[code][:10]
    raise AssertionError(f"{handle} has no date")


# --- determinism ---------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data(topology: Topology, demo: DemoData) -> None:
    again = build_demo(topology, 2024, TOP)
    assert again.identifiers == demo.identifiers
    assert again.enterprises == demo.enterprises
    assert again.product == demo.product


def test_another_seed_gives_other_data_with_the_same_shape(
    topology: Topology, demo: DemoData
) -> None:
    other = build_demo(topology, 7, TOP)
    assert other.identifiers != demo.identifiers
    assert other.product == demo.product == "88.168.1/WARD-2024-000123"
    assert {n: len(p) for n, p in other.identifiers.items()} == {
        n: len(p) for n, p in demo.identifiers.items()
    }


def test_the_default_top_url_comes_from_the_topology(topology: Topology) -> None:
    demo = build_demo(topology, 2024)
    url = next(v for v in demo.records()[demo.product] if v["index"] == 1)
    assert url["data"]["value"] == f"{topology.top_level[0].url}/t/{demo.product}"


# --- shape of every record -------------------------------------------------------------------


def test_every_record_follows_the_conventions_and_its_template(demo: DemoData) -> None:
    records = demo.records()
    assert len(records) == len(demo.samples), "identifiers are unique"
    for node, pairs in demo.identifiers.items():
        for handle, values in pairs:
            by_index = {v["index"]: v for v in values}
            assert len(by_index) == len(values), handle
            assert by_index[1]["type"] == "URL"
            assert by_index[1]["data"]["value"] == f"{TOP}/t/{handle}"
            admin = by_index[100]
            assert admin["type"] == "HS_ADMIN"
            assert admin["data"]["value"]["handle"] == handle.split("/", 1)[0] + "/ADMIN"
            assert by_index[1001]["type"] == "IDIS.TEMPLATE"
            assert template_family(_template(values)) in TEMPLATE_STAGES
            for value in values:
                if value["type"].startswith("TRACE."):
                    assert value["index"] >= 3000, handle
                elif value["index"] >= 2000:
                    assert value["index"] < 3000, handle
                assert value["timestamp"].endswith("Z")
            # The record passes the very check a write would run.
            check_record(Record(handle, values), DEMO_TEMPLATES.get)
            assert node == {
                "88.168": "furniture", "88.169": "timber", "88.170": "materials",
                "88.171": "inspection", "88.172": "power", "88.173": "auto",
            }[_node_prefix(handle)]  # fmt: skip


def test_no_edge_dangles(demo: DemoData) -> None:
    records = demo.records()
    for handle, values in records.items():
        for relation, target in _edges(values):
            assert target in records, f"{handle} {relation} → {target}"


def test_names_are_marked_as_demo_data(demo: DemoData) -> None:
    for ent in demo.enterprises:
        assert "演示" in ent.name and "(demo)" in ent.name_en
    records = demo.records()
    for handle, values in records.items():
        name = _items(values).get("name")
        if name and _template(values) != "enterprise.profile@1":
            family = template_family(_template(values))
            if family in ("furniture.product", "generator.unit", "vehicle.unit"):
                assert "演示" in name and "demo" in name, handle


def test_every_node_has_its_templates_and_enterprise_profiles(demo: DemoData) -> None:
    for node, pairs in demo.identifiers.items():
        names = {t.name for t in demo.templates_of(node)}
        assert {_template(v) for _, v in pairs} <= names
        assert "enterprise.profile@1" in names
        for ent in demo.enterprises_of(node):
            assert ent.profile in dict(pairs)
    assert {t.stage for t in DEMO_TEMPLATES.values()} >= {
        "product", "raw_material", "production", "process", "inspection", "enterprise",
        "component",
    }  # fmt: skip
    for template in DEMO_TEMPLATES.values():
        assert template.stage == TEMPLATE_STAGES[template.family]


# --- the story -------------------------------------------------------------------------------


def test_the_sample_wardrobe_traces_across_the_four_furniture_chain_nodes(demo: DemoData) -> None:
    records = demo.records()
    product = demo.product
    assert product == "88.168.1/WARD-2024-000123"
    assert _template(records[product]) == "furniture.product@1"
    assert "wardrobe" in _items(records[product])["category"]
    reached = _closure(records, product)
    assert len(reached) >= 15
    per_node = Counter(_node_prefix(h) for h in reached)
    assert set(per_node) == FURNITURE_CHAIN
    stages = {stage_of(_template(records[h])) for h in reached}
    assert {"raw_material", "production", "process", "product", "inspection"} <= stages
    families = Counter(template_family(_template(records[h])) for h in reached)
    assert families["process.step"] == 5
    assert families["timber.origin"] >= 1 and families["board.lot"] >= 1
    assert families["hardware.lot"] >= 1 and families["coating.lot"] >= 1
    assert families["inspection.report"] >= 3  # internal QC and third-party reports
    kinds = {
        _items(records[h])["report_kind"] for h in reached if "report_kind" in _items(records[h])
    }
    assert any("internal" in k for k in kinds) and any("third-party" in k for k in kinds)
    standards = " ".join(_items(records[h]).get("standard", "") for h in reached)
    assert "GB 18584-2001" in standards and "GB/T 3324-2017" in standards


def test_the_timber_lots_carry_their_origin(demo: DemoData) -> None:
    records = demo.records()
    lots = [v for h, v in records.items() if _template(v) == "timber.origin@1"]
    assert lots
    for values in lots:
        items = _items(values)
        assert {"species", "harvest_region", "harvest_date", "fsc_certificate"} <= items.keys()
    coatings = [v for v in records.values() if _template(v) == "coating.lot@1"]
    assert coatings and all(float(_items(v)["voc_g_per_l"]) >= 0 for v in coatings)


def test_lots_are_shared_between_products(demo: DemoData) -> None:
    records = demo.records()
    users: dict[str, set[str]] = defaultdict(set)
    for handle, values in records.items():
        if _template(values) == "furniture.product@1":
            for relation, target in _edges(values):
                if relation == "TRACE.INPUT":
                    users[target].add(handle)
    shared = {lot: who for lot, who in users.items() if len(who) >= 2}
    assert shared, "some lot goes into more than one product"
    # ... even into products of two different furniture makers.
    assert any(len({h.split("/")[0] for h in who}) == 2 for who in shared.values())


def test_times_run_harvest_board_production_inspection(demo: DemoData) -> None:
    records = demo.records()
    checked = 0
    for handle, values in records.items():
        family = template_family(_template(values))
        mine = _date(records, handle)
        for relation, target in _edges(values):
            theirs = _date(records, target)
            other = template_family(_template(records[target]))
            if relation in ("TRACE.ORIGIN", "TRACE.INPUT", "TRACE.COMPONENT", "TRACE.STEP"):
                assert theirs <= mine, (handle, relation, target)
                if relation != "TRACE.STEP":
                    assert theirs < mine, (handle, relation, target)
                checked += 1
            if relation == "TRACE.INSPECTION" and family != "furniture.batch":
                assert theirs > mine, (handle, target)
                checked += 1
            if relation == "TRACE.BATCH":
                assert theirs <= mine
            if relation == "TRACE.INSPECTION" and family == "furniture.batch":
                assert other == "inspection.report" and theirs > mine
                checked += 1
        if family == "process.step":
            items = _items(values)
            assert items["started_at"] < items["ended_at"], handle
    assert checked > 50
    # And the whole chain of the sample: harvest < board < production < inspection.
    product = records[demo.product]
    made = _items(product)["produced_at"]
    for _, lot in _edges(product):
        if lot.split("/")[1].startswith("BOARD-LOT"):
            board = _items(records[lot])["produced_at"]
            harvests = [
                _items(records[t])["harvest_date"]
                for r, t in _edges(records[lot])
                if r == "TRACE.ORIGIN"
            ]
            assert harvests and max(harvests) < board < made


def test_steps_of_a_batch_follow_each_other(demo: DemoData) -> None:
    records = demo.records()
    for handle, values in records.items():
        if _template(values) != "furniture.batch@1":
            continue
        steps = [t for r, t in _edges(values) if r == "TRACE.STEP"]
        assert [_items(records[s])["step_code"] for s in steps] == [
            "CUT", "EDGE", "DRILL", "PAINT", "ASSY"
        ]  # fmt: skip
        times = [(_items(records[s])["started_at"], _items(records[s])["ended_at"]) for s in steps]
        for (_, end), (start, _) in pairwise(times):
            assert end <= start, handle
        assert _items(values)["finished_at"] == times[-1][1]


def test_other_industries_trace_too(demo: DemoData) -> None:
    records = demo.records()
    vehicle = next(h for h, v in records.items() if _template(v) == "vehicle.unit@1")
    reached = _closure(records, vehicle)
    assert {template_family(_template(records[h])) for h in reached} >= {
        "vehicle.unit", "battery.pack", "battery.cell_lot", "enterprise.profile"
    }  # fmt: skip
    cell = next(h for h in reached if _template(records[h]) == "battery.cell_lot@1")
    assert "宜宾" in _items(records[cell])["plant"]
    generator = next(h for h, v in records.items() if _template(v) == "generator.unit@1")
    families = {template_family(_template(records[h])) for h in _closure(records, generator)}
    assert families >= {"generator.unit", "stator.lot", "winding.lot", "test.report"}


def test_a_topology_without_some_nodes_still_builds(topology: Topology) -> None:
    small = Topology(nodes=[n for n in topology.nodes if n.name in ("cq-top", "furniture")])
    demo = build_demo(small, 2024, TOP)
    assert list(demo.identifiers) == ["furniture"]
    assert demo.product == "88.168.1/WARD-2024-000123"
    assert all(h.startswith("88.168.") for h in demo.samples)


# --- more products for load --------------------------------------------------------------------


def _all(per_node: dict[str, Pairs]) -> dict[str, list[dict[str, Any]]]:
    return {h: v for pairs in per_node.values() for h, v in pairs}


def test_extra_products_are_deterministic_and_well_formed(topology: Topology) -> None:
    first = extra_products(topology, 2024, 100, 45, TOP)
    assert first == extra_products(topology, 2024, 100, 45, TOP)
    records = _all(first)
    products = [h for h, v in records.items() if _template(v) == "furniture.product@1"]
    assert len(products) == 45
    assert products[0] == "88.168.1/WARD-X00000100" and products[-1] == "88.168.1/WARD-X00000144"
    assert set(first) == {"furniture", "timber", "materials", "inspection"}
    for pairs in first.values():
        for handle, values in pairs:
            check_record(Record(handle, values), DEMO_TEMPLATES.get)
            assert {t.name for t in templates_for([(handle, values)])} >= {_template(values)}
    # Every edge points into the new records or at an existing enterprise profile.
    demo = build_demo(topology, 2024, TOP).records()
    for handle, values in records.items():
        for _, target in _edges(values):
            assert target in records or target in demo, (handle, target)
    reached = _closure({**demo, **records}, products[0])
    assert {_node_prefix(h) for h in reached} == FURNITURE_CHAIN and len(reached) >= 15


def test_extra_runs_with_other_starts_never_collide(topology: Topology) -> None:
    one = set(_all(extra_products(topology, 2024, 0, 30, TOP)))
    two = set(_all(extra_products(topology, 2024, 30, 30, TOP)))
    base = set(build_demo(topology, 2024, TOP).records())
    assert not one & two and not (one | two) & base
    assert not {fold(h) for h in one} & {fold(h) for h in two}
    assert extra_products(topology, 2024, 0, 0, TOP) == {}


def test_extra_products_split_at_whole_batches_are_the_same_records(topology: Topology) -> None:
    whole = extra_products(topology, 2024, 100, 65, TOP)
    parts = [extra_products(topology, 2024, s, n, TOP) for s, n in ((100, 40), (140, 25))]
    merged = {node: [*parts[0].get(node, []), *parts[1].get(node, [])] for node in whole}
    assert merged == whole
    assert extra_products(topology, 2025, 100, 65, TOP) != whole
