"""A batch item is refused, or stored, exactly as a single PUT of the same values.

The batch takes shortcuts a single PUT does not (the fast value path, orjson for the
body, signing with a pinned key ring, the garbage collector paused): each case here
sends the same values both ways and compares the outcome, with the node's default
limits and with smaller ones.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from idcore.store import Record
from tests.integration.conftest import NODE_ADMIN, Node, basic, expect, stored, unchanged

PATH = "/api/batch/handles"


def _v(index: Any = 2, vtype: Any = "DESC", data: Any = "text", **extra: Any) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": data, **extra}


def _admin(**value: Any) -> dict[str, Any]:
    return _v(100, "HS_ADMIN", {"format": "admin", "value": value})


def _post(node: Node, raw: bytes) -> Any:
    return node.call(
        "POST",
        PATH,
        headers={"Authorization": basic(NODE_ADMIN)},
        data=raw,
        content_type="application/json",
    )


def _batch_one(node: Node, handle: str, values: Any) -> dict[str, Any]:
    raw = json.dumps({"handles": [{"handle": handle, "values": values}]}).encode()
    body = expect(_post(node, raw), 200, 1)
    result: dict[str, Any] = body["results"][0]
    return result


def _content(record: Record | None) -> list[dict[str, Any]]:
    """A stored record without what differs between two writes (signature, timestamps)."""
    assert record is not None
    return [
        {k: v for k, v in value.items() if k != "timestamp"}
        for value in record.values
        if value["type"] != "HS_SIGNATURE"
    ]


def _same_both_ways(node: Node, name: str, values: Any) -> tuple[int, str]:
    """PUT the values to one identifier and batch them to another; assert the same outcome."""
    single, batched = f"88.168.1/PUT-{name}", f"88.168.1/BATCH-{name}"
    resp = node.put(single, values, auth=NODE_ADMIN)
    put_body = resp.get_json()
    item = _batch_one(node, batched, values)
    put_code = 1 if resp.status_code in (200, 201) else put_body["responseCode"]
    assert item["responseCode"] == put_code, (put_body, item)
    if put_code == 1:
        assert _content(stored(node.store, single)) == _content(stored(node.store, batched))
        return 1, ""
    # Messages name the identifier: the rest must be the same words.
    assert item["message"].replace(batched, "<handle>") == put_body["message"].replace(
        single, "<handle>"
    )
    assert stored(node.store, batched) is None
    return put_code, item["message"]


CASES: list[tuple[str, Any]] = [
    ("plain", [_v(1, "URL", "http://x"), _v(2, "DESC", {"format": "string", "value": "中"})]),
    ("ttl-zero", [_v(ttl=0)]),
    ("ttl-huge", [_v(ttl=2**64 + 1)]),
    ("ttl-iso", [_v(ttl="2030-01-01T00:00:00Z")]),
    ("index-text", [_v(index="7")]),
    ("admin", [_admin(handle="88.168.1/ADMIN", index=300, permissions="0111")]),
    ("admin-index-text", [_admin(handle="88.168.1/ADMIN", index="300")]),
    ("signature-dropped", [_v(), _v(400, "HS_SIGNATURE", "a.b.c")]),
    ("extra-key", [_v(note="ignored")]),
    ("hex", [_v(data={"format": "hex", "value": "00ff"})]),
    ("timestamp-number", [_v(timestamp=5)]),
    ("timestamp-list", [_v(timestamp=["2024"])]),
    ("index-zero", [_v(index=0)]),
    ("index-bool", [_v(index=True)]),
    ("index-float", [_v(index=2.0)]),
    ("index-big", [_v(index=2**31)]),
    ("index-twice", [_v(2), _v(2, "URL")]),
    ("type-control", [_v(vtype="DESC\x1b")]),
    ("type-long", [_v(vtype="T" * 256)]),
    ("type-number", [_v(vtype=5)]),
    ("data-long", [_v(data="x" * 4001)]),
    ("data-null", [_v(data=None)]),
    ("data-extra", [_v(data={"format": "string", "value": "x", "more": 1})]),
    ("ttl-negative", [_v(ttl=-5)]),
    ("ttl-bool", [_v(ttl=False)]),
    ("permissions-bad", [_v(permissions="1")]),
    ("admin-bits", [_admin(handle="88.168.1/ADMIN", index=300, permissions="3")]),
    ("admin-extra", [_admin(handle="88.168.1/ADMIN", index=300, who=1)]),
    ("admin-empty", [_admin(handle="", index=300)]),
    ("value-text", ["http://x"]),
    ("reserved-400", [_v(400, "URL", "http://x")]),
    ("template-bad", [_v(1001, "IDIS.TEMPLATE", "furniture.product@1"), _v(2000, "name", "")]),
    ("template-unknown", [_v(1001, "IDIS.TEMPLATE", "nothing.here@1")]),
]


@pytest.mark.parametrize(("name", "values"), CASES, ids=[c[0] for c in CASES])
def test_a_batch_item_fares_as_a_single_put(secondary: Node, name: str, values: Any) -> None:
    _same_both_ways(secondary, name, values)


def test_a_node_s_own_limits_apply_alike(make_node: Any) -> None:
    node: Node = make_node("furniture", max_values_per_record=5, max_value_bytes=256)
    # Four values and the writer's default HS_ADMIN: five.
    assert _same_both_ways(node, "four", [_v(i) for i in range(1, 5)])[0] == 1
    code, message = _same_both_ways(node, "five", [_v(i) for i in range(1, 6)])
    assert code == 202 and "would hold 6 values" in message
    code, message = _same_both_ways(node, "six", [_v(i) for i in range(1, 7)])
    assert code == 202 and "6 values in one record" in message
    assert _same_both_ways(node, "bytes-ok", [_v(data="床" * 85)])[0] == 1
    assert _same_both_ways(node, "bytes-over", [_v(data="床" * 86)])[0] == 202
    assert _same_both_ways(node, "admin-over", [_admin(handle="床" * 80, index=300)])[0] == 202


def test_a_lone_surrogate_refuses_the_batch_as_it_refuses_a_put(secondary: Node) -> None:
    values = b'[{"index":1,"type":"URL","data":"a\\ud800b"}]'
    put = expect(
        secondary.put("88.168.1/LONE-1", None, auth=NODE_ADMIN, data=values,
                      content_type="application/json"),
        400,
        4,
        "surrogate",
    )  # fmt: skip
    raw = b'{"handles":[{"handle":"88.168.1/LONE-2","values":' + values + b"}]}"
    with unchanged(secondary):
        body = expect(_post(secondary, raw), 400, 4, "surrogate")
    assert body["message"] == put["message"]
    # A pair is one character, and fine.
    pair = raw.replace(b"\\ud800", b"\\ud83d\\ude00")
    assert expect(_post(secondary, pair), 200, 1)["succeeded"] == 1


def test_long_numbers_are_read_exactly(secondary: Node) -> None:
    # 2**64 + 1 has no float form: it is stored as the integer sent, as by a PUT.
    values = [_v(1, "URL", "http://x/1234567890123456789012", ttl=2**64 + 1)]
    assert _batch_one(secondary, "88.168.1/LONG-1", values)["responseCode"] == 1
    _, _, text = secondary.dump()["records"]["88.168.1/LONG-1"]
    assert f'"ttl":{2**64 + 1},' in text
    # Big numbers elsewhere in the body are read exactly too (and refused as before).
    raw = json.dumps(
        {"handles": [{"handle": "88.168.1/LONG-2", "values": [_v(index=2**64 + 1)]}]}
    ).encode()
    item = expect(_post(secondary, raw), 200, 1)["results"][0]
    assert item["responseCode"] == 202 and "2147483647" in item["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"handles":[{"handle":"88.168.1/NAN","values":[{"index":1,"type":"X","data":NaN}]}]}',
        b'{"handles":[], "extra": 1e400]',
        b'{"handles":[]} trailing',
    ],
)
def test_bodies_the_fast_parser_refuses_get_the_usual_answer(secondary: Node, raw: bytes) -> None:
    with unchanged(secondary):
        expect(_post(secondary, raw), 400, 4, "JSON")


def test_the_garbage_collector_is_back_after_any_batch(secondary: Node) -> None:
    assert gc.isenabled()
    _batch_one(secondary, "88.168.1/GC-1", [_v()])
    assert gc.isenabled()
    expect(_post(secondary, b"{"), 400, 4)
    assert gc.isenabled()
    expect(_post(secondary, b'{"handles": 5}'), 400, 4)
    assert gc.isenabled()
