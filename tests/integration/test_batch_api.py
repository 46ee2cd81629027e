"""Batch registration on a secondary node: `POST /api/batch/handles`, on SQLite and on Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from werkzeug.test import TestResponse

from idcore.demo import extra_products
from idcore.identifier import fold
from idcore.store import Record
from idcore.topology import load_topology
from tests.integration.conftest import (
    ENTERPRISE_1,
    ENTERPRISE_2,
    NODE_ADMIN,
    PRODUCT,
    STORES,
    Node,
    basic,
    expect,
    stored,
    unchanged,
)

pytestmark = STORES

PATH = "/api/batch/handles"


@pytest.fixture
def node(make_node: Any, store_kind: str) -> Node:
    built: Node = make_node("furniture", store_kind)
    return built


def _v(index: int, vtype: str, text: str) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}}


def _product(handle: str, **items: str) -> dict[str, Any]:
    fields = {
        "name": "测试衣柜（演示） / test wardrobe (demo)",
        "category": "衣柜 wardrobe",
        "model": "T-1",
        "serial_no": handle.split("/")[1],
        "manufacturer": "demo",
        "produced_at": "2024-06-01",
        **items,
    }
    values = [
        _v(1, "URL", f"http://x/t/{handle}"),
        _v(1001, "IDIS.TEMPLATE", "furniture.product@1"),
    ]
    values += [_v(2000 + i, code, text) for i, (code, text) in enumerate(fields.items())]
    values.append(_v(3000, "TRACE.INPUT", "88.169.1/BOARD-LOT-2024-0305"))
    return {"handle": handle, "values": values}


def post(
    node: Node,
    body: Any,
    auth: tuple[str, str] | None = NODE_ADMIN,
    query: str = "",
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> TestResponse:
    headers = {"Authorization": basic(auth)} if auth else {}
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    return node.call("POST", PATH + query, headers=headers, data=data, content_type=content_type)


def _codes(body: dict[str, Any]) -> list[int]:
    return [r["responseCode"] for r in body["results"]]


def _dump(node: Node, handle: str) -> str | None:
    record = stored(node.store, handle)
    return record.dumps() if record else None


# --- the happy path --------------------------------------------------------------------------


def test_a_batch_is_written_and_answered_item_by_item(node: Node) -> None:
    items = [_product(f"88.168.1/B-{n}") for n in range(3)]
    body = expect(post(node, {"handles": items}), 200, 1)
    assert body["results"] == [
        {"handle": f"88.168.1/B-{n}", "responseCode": 1, "message": "created"} for n in range(3)
    ]
    assert (body["total"], body["succeeded"], body["failed"]) == (3, 3, 0)
    values = node.values("88.168.1/B-1")
    assert values[1001]["data"]["value"] == "furniture.product@1"
    assert values[2000]["type"] == "name"
    assert all(v["timestamp"].endswith("Z") and v["ttl"] == 86400 for v in values.values())
    # No HS_ADMIN in the item: the writer is its admin, as with a single PUT.
    assert values[100]["data"]["value"]["handle"] == "88.168/ADMIN"
    assert stored(node.store, "88.168.1/b-1") is not None  # case-folded key, as a PUT


def test_a_bare_list_is_a_batch_too(node: Node) -> None:
    body = expect(post(node, [_product("88.168.1/BARE-1")]), 200, 1)
    assert _codes(body) == [1]


def test_an_empty_batch_is_fine(node: Node) -> None:
    with unchanged(node):
        body = expect(post(node, {"handles": []}), 200, 1)
    assert body["results"] == [] and body["total"] == 0


def test_the_batch_stores_what_a_single_put_stores(node: Node) -> None:
    item = _product("88.168.1/SAME-1")
    item["values"].append(
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {"format": "admin", "value": {"handle": "88.168.1/ADMIN", "index": 300}},
        }
    )
    expect(post(node, [item]), 200, 1)
    expect(node.put("88.168.1/SAME-2", item["values"], auth=NODE_ADMIN), 201, 1)
    one, two = stored(node.store, "88.168.1/SAME-1"), stored(node.store, "88.168.1/SAME-2")
    assert one is not None and two is not None

    def strip(record: Record) -> list[dict[str, Any]]:
        # Both are signed; each signature names its own handle (test_trust.py checks them).
        assert [v["index"] for v in record.values if v["type"] == "HS_SIGNATURE"] == [400]
        return [
            {k: v for k, v in value.items() if k != "timestamp"}
            | ({"data": {"format": "string", "value": "(url)"}} if value["index"] == 1 else {})
            for value in record.values
            if value["type"] != "HS_SIGNATURE"
        ]

    assert strip(one) == strip(two)


def test_secrets_are_hashed_as_a_put_hashes_them(node: Node) -> None:
    item = {
        "handle": "88.168.1/OPERATOR",
        "values": [{"index": 300, "type": "HS_SECKEY", "data": "s3cret"}],
    }
    expect(post(node, [item]), 200, 1)
    record = stored(node.store, "88.168.1/OPERATOR")
    assert record is not None
    seckey = next(v for v in record.values if v["type"] == "HS_SECKEY")
    assert seckey["data"]["value"].startswith("scrypt$") and seckey["permissions"] == "1100"
    assert "s3cret" not in json.dumps(expect(node.get("88.168.1/OPERATOR"), 200, 1))


def test_the_snms_body_form_is_understood(node: Node) -> None:
    item = _product("88.168.1/SNMS-1")
    values = [v for v in item["values"] if v["index"] != 1001]
    body = expect(
        post(node, [{"handle": "88.168.1/SNMS-1", "templateVersion": "furniture.product@1",
                     "value": values}]),
        200,
        1,
    )  # fmt: skip
    assert _codes(body) == [1]
    assert node.values("88.168.1/SNMS-1")[1001]["data"]["value"] == "furniture.product@1"
    clash = {"handle": "88.168.1/SNMS-2", "templateVersion": "board.lot@1", **item}
    clash["handle"] = "88.168.1/SNMS-2"
    assert _codes(expect(post(node, [clash]), 200, 1)) == [202]


# --- refusing the whole request ------------------------------------------------------------


def test_more_than_2000_items_are_refused_before_anything_is_written(node: Node) -> None:
    items = [_product(f"88.168.1/MANY-{n}") for n in range(2001)]
    with unchanged(node):
        expect(post(node, {"handles": items}), 400, 4, "2000")


@pytest.mark.parametrize(
    ("auth", "status", "code"),
    [
        (None, 401, 402),
        ((NODE_ADMIN[0], "wrong"), 403, 403),
        (("300:88.168.9/ADMIN", "x"), 403, 404),
    ],
)
def test_a_batch_needs_valid_credentials(
    node: Node, auth: tuple[str, str] | None, status: int, code: int
) -> None:
    with unchanged(node):
        expect(post(node, [_product("88.168.1/AUTH-1")], auth=auth), status, code)


@pytest.mark.parametrize(
    ("raw", "content_type", "words"),
    [
        (b"{", "application/json", "not valid JSON"),
        (b'{"handles": 5}', "application/json", "must be a list"),
        (b'{"items": []}', "application/json", "handles"),
        (b'"text"', "application/json", "body must be"),
        (b'{"handles": [], "overwrite": "yes"}', "application/json", "overwrite"),
        (b"[]", "text/plain", "Content-Type"),
        (b"\xff", "application/json", "UTF-8"),
    ],
)
def test_a_malformed_body_is_a_protocol_error(
    node: Node, raw: bytes, content_type: str, words: str
) -> None:
    with unchanged(node):
        expect(post(node, None, raw=raw, content_type=content_type), 400, 4, words)


# --- refusing single items -------------------------------------------------------------------


def test_each_bad_item_is_refused_alone_and_the_good_ones_are_written(node: Node) -> None:
    too_deep: Any = "x"
    for _ in range(40):
        too_deep = [too_deep]
    items: list[Any] = [
        _product("88.168.1/OK-1"),
        {"handle": "88.168.1/", "values": []},  # invalid handle
        _product("88.169.1/ELSEWHERE"),  # not homed here
        {"handle": "88.168.1/BADVALUE", "values": [{"index": "x", "type": "URL", "data": "y"}]},
        _product("88.168.1/BADTEMPLATE", produced_at="yesterday", warranty_years="-3"),
        _product("88.168.1/OK-1"),  # the same identifier twice
        _product(PRODUCT),  # exists; overwrite is false by default
        "not an object",
        {"values": []},  # no handle
        {"handle": "88.168.1/NOVALUES"},
        {"handle": "88.168.1/DEEP", "values": [{"index": 1, "type": "X",
                                                "data": {"format": "site", "value": too_deep}}]},
        _product("88.168.1/OK-2"),
    ]  # fmt: skip
    before = {h: _dump(node, h) for h in (PRODUCT, "88.168.1/BADTEMPLATE", "88.168.1/DEEP")}
    count = node.store.count()
    body = expect(post(node, {"handles": items}), 200, 1)
    assert _codes(body) == [1, 102, 301, 202, 202, 4, 101, 4, 4, 4, 4, 1]
    assert [r["handle"] for r in body["results"]] == [
        "88.168.1/OK-1", "88.168.1/", "88.169.1/ELSEWHERE", "88.168.1/BADVALUE",
        "88.168.1/BADTEMPLATE", "88.168.1/OK-1", PRODUCT, None, None, "88.168.1/NOVALUES",
        "88.168.1/DEEP", "88.168.1/OK-2",
    ]  # fmt: skip
    assert (body["succeeded"], body["failed"]) == (2, 10)
    problems = {p["item"] for p in body["results"][4]["problems"]}
    assert problems == {"produced_at", "warranty_years"}
    assert "more than once" in body["results"][5]["message"]
    assert "exists" in body["results"][6]["message"]
    assert all(r["message"] for r in body["results"])
    assert node.store.count() == count + 2
    assert {h: _dump(node, h) for h in before} == before


def test_rights_are_checked_per_item(node: Node) -> None:
    # 88.168.1's admin may write under 88.168.1 only.
    items = [
        _product("88.168.1/MINE-1"),
        _product("88.168.2/THEIRS-1"),
        _product("88.168.1/MINE-2"),
    ]
    body = expect(post(node, items, auth=ENTERPRISE_1), 200, 1)
    assert _codes(body) == [1, 401, 1]
    assert stored(node.store, "88.168.2/THEIRS-1") is None
    body = expect(post(node, [_product("88.168.2/THEIRS-1")], auth=ENTERPRISE_2), 200, 1)
    assert _codes(body) == [1]
    # Replacing needs the rights over the existing record too.
    with unchanged(node):
        body = expect(
            post(node, {"handles": [_product("88.168.2/THEIRS-1")], "overwrite": True},
                 auth=ENTERPRISE_1),
            200,
            1,
        )  # fmt: skip
    assert _codes(body) == [401]


def test_overwrite_replaces_existing_records_whole(node: Node) -> None:
    expect(post(node, [_product("88.168.1/OW-1")]), 200, 1)
    first = stored(node.store, "88.168.1/OW-1")
    with unchanged(node):
        assert _codes(expect(post(node, [_product("88.168.1/OW-1", model="T-2")]), 200, 1)) == [101]
    body = expect(
        post(node, {"handles": [_product("88.168.1/ow-1", model="T-2")], "overwrite": True}),
        200,
        1,
    )
    assert body["results"] == [
        {"handle": "88.168.1/ow-1", "responseCode": 1, "message": "replaced"}
    ]
    again = stored(node.store, "88.168.1/OW-1")
    assert again is not None and first is not None
    assert again.handle == "88.168.1/OW-1"  # the first spelling stays, as with a PUT
    assert {v["type"]: v["data"]["value"] for v in again.values}["model"] == "T-2"
    # ?overwrite=true works as well as the body field.
    body = expect(
        post(node, [_product("88.168.1/OW-1", model="T-3")], query="?overwrite=true"), 200, 1
    )
    assert _codes(body) == [1]


# --- the fast path at full size ----------------------------------------------------------------


def test_a_full_batch_of_demo_records_is_fast_and_complete(node: Node, store_kind: str) -> None:
    per_node = extra_products(load_topology(), 2024, 5000, 1600)
    pairs = per_node["furniture"][:2000]
    assert len(pairs) == 2000
    body = json.dumps(
        {"handles": [{"handle": h, "values": v} for h, v in pairs]}, ensure_ascii=False
    ).encode()
    began = time.perf_counter()
    answer = expect(post(node, None, raw=body), 200, 1)
    took = time.perf_counter() - began
    print(f"\n2000-item batch on {store_kind}: {took:.2f} s, {2000 / took:.0f} identifiers/s")
    assert answer["succeeded"] == 2000, [r for r in answer["results"] if r["responseCode"] != 1][:3]
    keys = [fold(h) for h, _ in pairs]
    found = node.store.get_many(keys)
    assert all(r is not None for r in found)
    assert [r.handle for r in found if r] == [h for h, _ in pairs]
    _, listed = node.store.list_handles("88.168.1")
    assert {h for h, _ in pairs} <= set(listed)
    assert took < 30


# --- the store operation under the batch -------------------------------------------------------


def test_mutate_many_writes_only_what_change_returns(node: Node) -> None:
    store = node.store
    keys = [fold("88.168.1/MM-1"), fold("88.168.1/MM-2"), fold(PRODUCT)]
    seen: list[list[str]] = []

    def change(asked: list[str], current: list[Record | None]) -> list[Record]:
        seen.append(asked)
        assert [c is None for c in current] == [k != fold(PRODUCT) for k in asked]
        return [Record("88.168.1/MM-1", [_v(1, "URL", "x")])]

    before = _dump(node, PRODUCT)
    store.mutate_many(keys, change)
    assert sorted(k for group in seen for k in group) == sorted(keys)
    assert stored(node.store, "88.168.1/MM-1") is not None
    assert stored(node.store, "88.168.1/MM-2") is None
    assert _dump(node, PRODUCT) == before
    assert "88.168.1/MM-1" in node.store.list_handles("88.168.1")[1]


def test_mutate_many_refuses_a_record_it_did_not_read(node: Node) -> None:
    def change(asked: list[str], current: list[Record | None]) -> list[Record]:
        return [Record("88.168.1/A", [_v(1, "URL", "x")]), Record("88.168.1/B", [])]

    with unchanged(node), pytest.raises(ValueError, match="not among the keys"):
        node.store.mutate_many([fold("88.168.1/A")], change)
