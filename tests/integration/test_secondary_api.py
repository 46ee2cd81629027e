"""The Handle REST API of a secondary node (furniture, 88.168) on SQLite and on Redis.

Every refused write is checked to leave the store exactly as it was. Tests marked
`@STORES` (writes, rights, listing) run on both back ends; checks that never reach
the store (syntax, bodies, paths) run on SQLite.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from idcore.identifier import MAX_HANDLE_BYTES, fold
from idcore.store import Record
from tests.integration.conftest import (
    ENTERPRISE_1,
    ENTERPRISE_2,
    NODE_ADMIN,
    PRODUCT,
    STORES,
    TIMBER_ENTERPRISE,
    Node,
    expect,
    stored,
    unchanged,
)

URL_VALUE = {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x/1"}}
ITEM = "88.168.1/TEST-ITEM-1"
"""A record of known values (no template) that the write tests change."""


def _value(index: int, vtype: str, text: str) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}}


ITEM_VALUES = [
    {**_value(1, "URL", f"http://127.0.0.1:8000/t/{ITEM}"), "ttl": 86400},
    {**_value(2, "DESC", "test item"), "ttl": 86400},
    {
        "index": 100,
        "type": "HS_ADMIN",
        "data": {
            "format": "admin",
            "value": {"handle": "88.168.1/ADMIN", "index": 300, "permissions": "111111111111"},
        },
        "ttl": 86400,
    },
    {**_value(2000, "name", "衣柜（测试） / wardrobe (test)"), "ttl": 86400},
    {**_value(2001, "model", "T-1"), "ttl": 86400},
    {**_value(2002, "manufacturer", "test"), "ttl": 86400},
    {**_value(2003, "produced_at", "2024-10-15"), "ttl": 86400},
]
for _v in ITEM_VALUES:
    _v["timestamp"] = "2024-10-15T08:00:00Z"
ITEM_INDEXES = [v["index"] for v in ITEM_VALUES]


@pytest.fixture
def secondary(secondary: Node) -> Node:
    """The furniture node with ITEM stored beside the demo seed."""
    secondary.store.put_many([Record(ITEM, [dict(v) for v in ITEM_VALUES])])
    return secondary


def _indexes(body: dict[str, Any]) -> list[int]:
    return [v["index"] for v in body["values"]]


# --- GET -------------------------------------------------------------------------------


@STORES
def test_resolve_answers_the_full_record(secondary: Node) -> None:
    body = expect(secondary.get(PRODUCT), 200, 1)
    assert body["handle"] == PRODUCT
    record = stored(secondary.store, PRODUCT)
    assert record is not None
    assert body["values"] == record.values  # every value of a demo record is public
    assert expect(secondary.get(ITEM), 200, 1)["values"] == ITEM_VALUES
    url = body["values"][0]
    assert url["type"] == "URL"
    assert url["data"] == {
        "format": "string",
        "value": "http://127.0.0.1:8000/t/88.168.1/WARD-2024-000123",
    }
    assert url["ttl"] == 86400
    assert url["timestamp"].endswith("Z")
    admin = body["values"][1]
    assert admin["type"] == "HS_ADMIN"
    assert admin["data"]["value"]["handle"] == "88.168.1/ADMIN"
    assert admin["data"]["value"]["index"] == 300


@STORES
@pytest.mark.parametrize(
    "spelling", ["88.168.1/ward-2024-000123", "88.168.1/Ward-2024-000123", PRODUCT]
)
def test_handle_is_echoed_exactly_as_sent_and_case_folds_in_ascii(
    secondary: Node, spelling: str
) -> None:
    body = expect(secondary.get(spelling), 200, 1)
    assert body["handle"] == spelling
    assert body["values"] == secondary.get(PRODUCT).get_json()["values"]


@STORES
def test_non_ascii_case_does_not_fold(secondary: Node) -> None:
    expect(secondary.put("88.168.1/床-é", [URL_VALUE]), 201, 1)
    assert expect(secondary.get("88.168.1/%E5%BA%8A-%C3%A9"), 200, 1)["handle"] == "88.168.1/床-é"
    expect(secondary.get("88.168.1/床-É"), 404, 100)


FILTERS = [
    ("?index=1", [1]),
    ("?index=1&index=2001", [1, 2001]),
    ("?index=1,2001", [1, 2001]),
    ("?index=2001&index=9999", [2001]),
    ("?type=URL", [1]),
    ("?type=URL&type=model", [1, 2001]),
    ("?type=HS_ADMIN", [100]),
    ("?index=2000&type=URL", [1, 2000]),
    ("?index=1&type=URL", [1]),
]


def test_index_and_type_filters_repeat_and_any_match(secondary: Node) -> None:
    for query, expected in FILTERS:
        body = expect(secondary.get(ITEM + query), 200, 1)
        assert _indexes(body) == expected, query
        assert body["handle"] == ITEM


def test_type_ending_in_a_dot_matches_its_subtypes(secondary: Node) -> None:
    values = [
        _value(1, "URL", "http://x/trace"),
        _value(10, "TRACE.INPUT", "88.169.1/BOARD-LOT-1"),
        _value(11, "TRACE.STEP", "88.168.1/STEP-1"),
        _value(12, "TRACE", "not a subtype"),
        _value(13, "TRACEABLE", "not a subtype either"),
        _value(14, "TRACE.INPUT.EXTRA", "88.170.1/HINGE-LOT-1"),
    ]
    expect(secondary.put("88.168.1/TRACE-1", values), 201, 1)
    body = expect(secondary.get("88.168.1/TRACE-1?type=TRACE."), 200, 1)
    assert _indexes(body) == [10, 11, 14]
    body = expect(secondary.get("88.168.1/TRACE-1?type=TRACE.INPUT"), 200, 1)
    assert _indexes(body) == [10]
    body = expect(secondary.get("88.168.1/TRACE-1?type=TRACE.INPUT.&type=URL"), 200, 1)
    assert _indexes(body) == [1, 14]


def test_existing_record_without_matching_values_is_200_with_no_values(secondary: Node) -> None:
    for query in ["?index=7777", "?type=NOPE", "?type=URL.", "?index=5&type=X", "?type=url"]:
        body = expect(secondary.get(ITEM + query), 200, 200)
        assert body["values"] == [], query
        assert body["handle"] == ITEM


def test_missing_handle_is_404_100(secondary: Node) -> None:
    body = expect(secondary.get("88.168.1/NOPE-1"), 404, 100, "not found")
    assert body["handle"] == "88.168.1/NOPE-1"
    expect(secondary.get("88.168.1/NOPE-1?index=1"), 404, 100)


@pytest.mark.parametrize(("path", "echo"), [("88.168.1", "88.168.1"), ("0.NA/88.168.1", None)])
def test_path_without_slash_means_the_prefix_record(
    secondary: Node, path: str, echo: str | None
) -> None:
    body = expect(secondary.get(path), 200, 1)
    assert body["handle"] == (echo or path)
    admins = [v["data"]["value"]["handle"] for v in body["values"] if v["type"] == "HS_ADMIN"]
    assert admins == ["88.168.1/ADMIN", "88.168/ADMIN"]


def test_prefix_record_spellings_agree(secondary: Node) -> None:
    assert secondary.values("88.168.1") == secondary.values("0.NA/88.168.1")
    assert secondary.values("0.na/88.168.1") == secondary.values("88.168.1")


@STORES
def test_hs_seckey_is_never_shown_anonymously(secondary: Node) -> None:
    for admin in ["88.168.1/ADMIN", "88.168.2/ADMIN", "88.168/ADMIN", "88.168.1/admin"]:
        body = expect(secondary.get(admin), 200, 1)
        assert body["handle"] == admin
        assert 300 not in _indexes(body)
        assert "HS_SECKEY" not in {v["type"] for v in body["values"]}
        admins = [v["data"]["value"] for v in body["values"] if v["type"] == "HS_ADMIN"]
        assert [a["handle"].upper() for a in admins] == [admin.upper()]
        assert "scrypt" not in json.dumps(body)
        for query in ("?index=300", "?type=HS_SECKEY", "?index=300&type=HS_SECKEY"):
            assert expect(secondary.get(admin + query), 200, 200)["values"] == []
        assert _indexes(expect(secondary.get(admin + "?type=HS_ADMIN"), 200, 1)) == [100]


@STORES
def test_plus_stays_plus_and_percent_encoding_is_decoded(secondary: Node) -> None:
    expect(secondary.put("88.168.1/A+B", [URL_VALUE]), 201, 1)
    assert expect(secondary.get("88.168.1/A+B"), 200, 1)["handle"] == "88.168.1/A+B"
    assert expect(secondary.get("88.168.1/A%2BB"), 200, 1)["handle"] == "88.168.1/A+B"
    expect(secondary.get("88.168.1/A B"), 404, 100)
    expect(secondary.get("88.168.1/A%20B"), 404, 100)


def test_suffix_may_contain_slashes(secondary: Node) -> None:
    expect(secondary.put("88.168.1/LOT/2024/7", [URL_VALUE]), 201, 1)
    assert expect(secondary.get("88.168.1/lot/2024/7"), 200, 1)["handle"] == "88.168.1/lot/2024/7"
    expect(secondary.get("88.168.1/LOT/2024"), 404, 100)


# --- PUT: create and replace ----------------------------------------------------------------


@STORES
def test_create_is_201_and_adds_the_creator_as_admin(secondary: Node) -> None:
    resp = secondary.put("88.168.1/NEW-1", {"values": [URL_VALUE, _value(2, "DESC", "new")]})
    assert expect(resp, 201, 1) == {"responseCode": 1, "handle": "88.168.1/NEW-1"}
    values = secondary.values("88.168.1/NEW-1")
    assert sorted(values) == [1, 2, 100]
    assert values[1]["data"] == URL_VALUE["data"]
    assert values[100]["type"] == "HS_ADMIN"
    assert values[100]["data"]["value"] == {
        "handle": "88.168.1/ADMIN",
        "index": 300,
        "permissions": "111111111111",
    }
    assert all(v["timestamp"].endswith("Z") for v in values.values())


@STORES
def test_create_keeps_a_given_hs_admin(secondary: Node) -> None:
    admin = {
        "index": 100,
        "type": "HS_ADMIN",
        "data": {"format": "admin", "value": {"handle": "88.168.1/ADMIN", "index": "300"}},
    }
    expect(secondary.put("88.168.1/NEW-2", [URL_VALUE, admin]), 201, 1)
    values = secondary.values("88.168.1/NEW-2")
    assert sorted(values) == [1, 100]
    assert values[100]["data"]["value"]["index"] == 300  # pyhandle's string index, as an int


@STORES
def test_replace_is_200_and_replaces_every_value(secondary: Node) -> None:
    resp = secondary.put(ITEM, {"values": [_value(1, "URL", "http://x/new"), _value(5, "E", "e")]})
    assert expect(resp, 200, 1)["handle"] == ITEM
    values = secondary.values(ITEM)
    assert sorted(values) == [1, 5]
    assert values[1]["data"]["value"] == "http://x/new"


@STORES
def test_replace_through_another_ascii_spelling_keeps_the_stored_spelling(secondary: Node) -> None:
    expect(secondary.put("88.168.1/test-item-1", [URL_VALUE]), 200, 1)
    record = stored(secondary.store, ITEM)
    assert record is not None
    assert record.handle == ITEM
    assert _handles_under(secondary, "88.168.1").count(ITEM) == 1


@STORES
def test_overwrite_false_on_an_existing_handle_is_409_101(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.put(ITEM, [URL_VALUE], query="?overwrite=false")
    body = expect(resp, 409, 101, "already exists")
    assert body["handle"] == ITEM


@STORES
def test_overwrite_false_on_a_new_handle_creates_it(secondary: Node) -> None:
    expect(secondary.put("88.168.1/NEW-3", [URL_VALUE], query="?overwrite=false"), 201, 1)
    assert sorted(secondary.values("88.168.1/NEW-3")) == [1, 100]


@STORES
def test_body_may_be_a_bare_array_with_bare_string_data(secondary: Node) -> None:
    body = [{"index": 1, "type": "URL", "data": "http://x/bare"}]
    expect(secondary.put("88.168.1/BARE-1", body), 201, 1)
    values = secondary.values("88.168.1/BARE-1")
    assert values[1]["data"] == {"format": "string", "value": "http://x/bare"}
    record = stored(secondary.store, "88.168.1/BARE-1")
    assert record is not None
    assert record.values[0]["data"] == {"format": "string", "value": "http://x/bare"}


@STORES
def test_pyhandle_register_handle_body(secondary: Node) -> None:
    # What pyhandle 1.5.0's register_handle(..., overwrite=False) sends.
    body = {
        "values": [
            {
                "index": 100,
                "type": "HS_ADMIN",
                "data": {
                    "format": "admin",
                    "value": {
                        "handle": "88.168.1/ADMIN",
                        "index": "300",
                        "permissions": "011111110011",
                    },
                },
            },
            {"index": 1, "type": "URL", "data": "http://example.com/pyhandle"},
        ]
    }
    expect(secondary.put("88.168.1/PYH-1", body, query="?overwrite=false"), 201, 1)
    values = secondary.values("88.168.1/PYH-1")
    assert values[100]["data"]["value"]["index"] == 300
    assert values[1]["data"]["value"] == "http://example.com/pyhandle"


@pytest.mark.parametrize("named", [ITEM, "88.168.1/test-item-1"])
def test_handle_field_equal_to_the_path_is_accepted(secondary: Node, named: str) -> None:
    expect(secondary.put(ITEM, {"handle": named, "values": [URL_VALUE]}), 200, 1)


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (ITEM, "88.168.1/WARD-2024-000124"),
        (ITEM, "88.168.2/WARD-2024-000123"),
        (ITEM, ""),
        (ITEM, 5),
        ("88.168.1/X-é", "88.168.1/X-É"),  # only ASCII letters fold
    ],
)
def test_handle_field_different_from_the_path_is_400_4(
    secondary: Node, path: str, named: Any
) -> None:
    with unchanged(secondary):
        resp = secondary.put(path, {"handle": named, "values": [URL_VALUE]})
    expect(resp, 400, 4, "must match")


@STORES
def test_handle_field_may_spell_out_the_prefix_record(secondary: Node) -> None:
    body = {"handle": "0.NA/88.168.1", "values": [_value(2002, "phone", "023-0000")]}
    expect(secondary.put("88.168.1", body, query="?index=2002"), 200, 1)
    assert secondary.values("0.NA/88.168.1")[2002]["data"]["value"] == "023-0000"


@STORES
def test_hs_seckey_is_stored_hashed_and_then_authenticates(secondary: Node) -> None:
    alice = ("300:88.168.1/ALICE", "alice-secret-ß")
    values = [
        {"index": 300, "type": "HS_SECKEY", "data": alice[1], "permissions": "1111"},
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {"format": "admin", "value": {"handle": "88.168.1/ALICE", "index": 300}},
        },
    ]
    expect(secondary.put("88.168.1/ALICE", values), 201, 1)

    record = stored(secondary.store, "88.168.1/ALICE")
    assert record is not None
    seckey = next(v for v in record.values if v["index"] == 300)
    assert seckey["type"] == "HS_SECKEY"
    assert seckey["data"]["format"] == "string"
    assert seckey["data"]["value"].startswith("scrypt$")
    assert alice[1] not in json.dumps(record.values, ensure_ascii=False)
    assert seckey["permissions"] == "1100"  # never public, whatever the client asked
    assert 300 not in secondary.values("88.168.1/ALICE")

    # The new admin may change its own record ...
    expect(
        secondary.put("88.168.1/ALICE", [_value(2, "DESC", "Alice")], auth=alice, query="?index=2"),
        200,
        1,
    )
    assert secondary.values("88.168.1/ALICE")[2]["data"]["value"] == "Alice"
    # ... with the right secret only, and nothing else under the prefix.
    with unchanged(secondary):
        expect(
            secondary.put(
                "88.168.1/ALICE", [URL_VALUE], auth=(alice[0], "wrong"), query="?index=1"
            ),
            403,
            403,
        )
        expect(secondary.put("88.168.1/ALICE-2", [URL_VALUE], auth=alice), 403, 401, "may not")
        expect(secondary.put(ITEM, [URL_VALUE], auth=alice, query="?index=1"), 403, 401)


@STORES
def test_hs_seckey_must_be_a_string(secondary: Node) -> None:
    seckey = {"index": 300, "type": "HS_SECKEY", "data": {"format": "hex", "value": "00"}}
    with unchanged(secondary):
        resp = secondary.put("88.168.1/BOB", [seckey])
    expect(resp, 400, 202, "HS_SECKEY", "string")


# --- PUT: partial updates ----------------------------------------------------------------


@STORES
def test_index_put_adds_a_value_and_keeps_the_others(secondary: Node) -> None:
    before = secondary.values(ITEM)
    resp = secondary.put(ITEM, [_value(2100, "TRACE.INPUT", "88.169.1/X")], query="?index=2100")
    assert expect(resp, 200, 1)["handle"] == ITEM
    after = secondary.values(ITEM)
    assert sorted(after) == [*ITEM_INDEXES, 2100]
    assert {i: v for i, v in after.items() if i != 2100} == before


@STORES
def test_index_put_replaces_a_value_and_keeps_the_others(secondary: Node) -> None:
    before = secondary.values(ITEM)
    resp = secondary.put(ITEM, [_value(1, "URL", "http://x/moved")], query="?index=1")
    expect(resp, 200, 1)
    after = secondary.values(ITEM)
    assert after[1]["data"]["value"] == "http://x/moved"
    assert {i: v for i, v in after.items() if i != 1} == {i: v for i, v in before.items() if i != 1}


@STORES
def test_index_put_with_overwrite_false_on_a_new_index_is_201(secondary: Node) -> None:
    query = "?index=7&overwrite=false"
    expect(secondary.put(ITEM, [_value(7, "EMAIL", "a@b.c")], query=query), 201, 1)
    assert secondary.values(ITEM)[7]["data"]["value"] == "a@b.c"


@STORES
def test_index_put_with_overwrite_false_on_an_existing_index_is_409_201(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.put(
            ITEM,
            [_value(7, "EMAIL", "a@b.c"), _value(1, "URL", "http://x/no")],
            query="?index=7&index=1&overwrite=false",
        )
    expect(resp, 409, 201, "index 1", "already exists")


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("?index=2", [1]),
        ("?index=1&index=2", [1]),
        ("?index=1", [1, 2]),
        ("?index=abc", [1]),
        ("?index=", [1]),
    ],
)
def test_index_not_matching_the_body_is_400_4(
    secondary: Node, query: str, indexes: list[int]
) -> None:
    body = [_value(i, "X", "x") for i in indexes]
    with unchanged(secondary):
        resp = secondary.put(ITEM, body, query=query)
    expect(resp, 400, 4, "index")


@STORES
def test_index_various_updates_just_the_values_sent(secondary: Node) -> None:
    body = [_value(1, "URL", "http://x/various"), _value(8, "NOTE", "n")]
    expect(secondary.put(ITEM, body, query="?index=various"), 200, 1)
    after = secondary.values(ITEM)
    assert sorted(after) == sorted([*ITEM_INDEXES, 8])
    assert after[1]["data"]["value"] == "http://x/various"


@STORES
def test_index_put_on_a_missing_handle_is_404_100(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.put("88.168.1/NOPE-2", [URL_VALUE], query="?index=1")
    expect(resp, 404, 100, "not found")


@STORES
def test_pyhandle_modify_handle_value_sequence(secondary: Node) -> None:
    # GET ?auth=true, then PUT ?index=..&overwrite=true with only the changed values.
    expect(secondary.get(ITEM + "?auth=true"), 200, 1)
    resp = secondary.put(
        ITEM,
        {"values": [_value(2001, "model", "WARD-999")], "handle": ITEM},
        query="?index=2001&overwrite=true",
    )
    expect(resp, 200, 1)
    assert secondary.values(ITEM)[2001]["data"]["value"] == "WARD-999"


# --- PUT: minting ------------------------------------------------------------------------


@STORES
def test_mint_new_suffix_appends_a_fresh_suffix(secondary: Node) -> None:
    first = expect(secondary.put("88.168.1/", [URL_VALUE], query="?mintNewSuffix=true"), 201, 1)
    second = expect(secondary.put("88.168.1/", [URL_VALUE], query="?mintNewSuffix=true"), 201, 1)
    assert first["handle"] != second["handle"]
    for body in (first, second):
        prefix, suffix = body["handle"].split("/", 1)
        assert prefix == "88.168.1"
        assert len(suffix) >= 8
        assert sorted(secondary.values(body["handle"])) == [1, 100]


@STORES
def test_mint_new_suffix_after_a_stem(secondary: Node) -> None:
    body = expect(secondary.put("88.168.1/LOT-", [URL_VALUE], query="?mintNewSuffix=true"), 201, 1)
    assert body["handle"].startswith("88.168.1/LOT-")
    assert body["handle"] != "88.168.1/LOT-"
    expect(secondary.get(body["handle"]), 200, 1)
    expect(secondary.get("88.168.1/LOT-"), 404, 100)


# --- DELETE ----------------------------------------------------------------------------


@STORES
def test_delete_removes_the_record_and_echoes_the_handle(secondary: Node) -> None:
    others = [h for h in _handles_under(secondary, "88.168.1") if h != ITEM]
    body = expect(secondary.delete(ITEM), 200, 1)
    assert body["handle"] == ITEM
    expect(secondary.get(ITEM), 404, 100)
    assert stored(secondary.store, ITEM) is None
    assert _handles_under(secondary, "88.168.1") == others
    assert secondary.store.list_handles("88.168.1") == (len(others), others)


@STORES
def test_delete_with_index_removes_only_those_values(secondary: Node) -> None:
    before = secondary.values(ITEM)
    expect(secondary.delete(ITEM, query="?index=2001&index=2002"), 200, 1)
    after = secondary.values(ITEM)
    assert sorted(after) == [1, 2, 100, 2000, 2003]
    assert all(after[i] == before[i] for i in after)


@STORES
def test_delete_missing_handle_is_404_100(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.delete("88.168.1/NOPE-3")
    expect(resp, 404, 100, "not found")


@STORES
def test_delete_missing_index_is_400_200(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.delete(ITEM, query="?index=4242")
    expect(resp, 400, 200, "4242")


@STORES
def test_delete_needs_rights(secondary: Node) -> None:
    with unchanged(secondary):
        expect(secondary.delete(ITEM, auth=None), 401, 402)
        expect(secondary.delete(ITEM, auth=ENTERPRISE_2), 403, 401, "may not")
        expect(secondary.delete(ITEM, auth=(ENTERPRISE_1[0], "nope")), 403, 403)


# --- listing ----------------------------------------------------------------------------


def _handles_under(node: Node, prefix: str) -> list[str]:
    """Every handle stored under exactly `prefix`, in key order, read from the store dump."""
    dump = node.dump()["records"].values()
    handles = [json.loads(v[2] if isinstance(v, tuple) else v)["h"] for v in dump]
    return sorted((h for h in handles if fold(h.split("/", 1)[0]) == fold(prefix)), key=fold)


@STORES
def test_listing_pages_through_a_prefix(secondary: Node) -> None:
    expected = _handles_under(secondary, "88.168.1")
    assert len(expected) >= 5
    assert ITEM in expected
    pages: list[list[str]] = []
    for page in range(len(expected) // 2 + 2):
        resp = secondary.get(f"/api/handles?prefix=88.168.1&page={page}&pageSize=2")
        assert resp.status_code == 200
        body = resp.get_json()
        assert body["prefix"] == "88.168.1"
        assert body["totalCount"] == str(len(expected))  # a string, as pyhandle expects
        pages.append(body["handles"])
    assert [h for page in pages for h in page] == expected
    assert all(len(page) == 2 for page in pages[: len(expected) // 2])
    assert pages[-1] == []


@STORES
def test_listing_without_paging_lists_everything_and_counts_new_handles(secondary: Node) -> None:
    expected = _handles_under(secondary, "88.168.1")
    body = secondary.get("/api/handles?prefix=88.168.1").get_json()
    assert body == {"prefix": "88.168.1", "totalCount": str(len(expected)), "handles": expected}
    expect(secondary.put("88.168.1/AAA", [URL_VALUE]), 201, 1)
    body = secondary.get("/api/handles?prefix=88.168.1&pageSize=1").get_json()
    assert body["totalCount"] == str(len(expected) + 1)
    assert body["handles"] == ["88.168.1/AAA"]
    expect(secondary.delete(ITEM), 200, 1)
    body = secondary.get("/api/handles?prefix=88.168.1").get_json()
    assert body["totalCount"] == str(len(expected))
    assert ITEM not in body["handles"]


def test_listing_lists_exactly_one_prefix(secondary: Node) -> None:
    body = secondary.get("/api/handles?prefix=88.168").get_json()
    assert "88.168/ADMIN" in body["handles"]
    assert all(h.upper().startswith("88.168/") for h in body["handles"])
    body = secondary.get("/api/handles?prefix=0.NA").get_json()
    assert {"0.NA/88.168.1", "0.NA/88.168.2"} <= set(body["handles"])


def test_listing_accepts_every_prefix_spelling(secondary: Node) -> None:
    expected = _handles_under(secondary, "88.168.1")
    for prefix in ["0.NA/88.168.1", "hdl:88.168.1", "88.168.1"]:
        body = secondary.get(f"/api/handles?prefix={prefix}").get_json()
        assert body["handles"] == expected
        assert body["prefix"] == prefix


LISTING_ERRORS = [
    ("", 400, 4),
    ("?prefix=", 400, 4),
    ("?prefix=88.168.1&pageSize=0", 400, 4),
    ("?prefix=88.168.1&page=x", 400, 4),
    ("?prefix=88.168.1&page=-1", 400, 4),
    ("?prefix=88..1", 400, 102),
    ("?prefix=88.169.1", 400, 301),
]


def test_listing_errors(secondary: Node) -> None:
    for query, status, code in LISTING_ERRORS:
        expect(secondary.get("/api/handles" + query), status, code)


# --- malformed identifiers and unknown prefixes -------------------------------------------

MALFORMED = [
    ("88.168.1/A%00B", "control character"),
    ("88.168.1/A%1BB", "control character"),
    ("88.168.1/A%7FB", "control character"),
    ("88.168.1/A%C2%85B", "control character"),
    ("88.168.1/" + "X" * (MAX_HANDLE_BYTES - 8), f"limit is {MAX_HANDLE_BYTES} bytes"),
    ("88." + "1" * 70 + "/X", "limit is 64 bytes"),
    ("88.168.1/", "empty suffix"),
    ("88..168/X", "invalid segment"),
    ("88.16$8/X", "invalid segment"),
    ("88.1%2068/X", "invalid segment"),
    ("0.NA/", "empty suffix"),
]


@pytest.mark.parametrize(("path", "rule"), MALFORMED)
def test_malformed_identifiers_are_400_102_naming_the_rule(
    secondary: Node, path: str, rule: str
) -> None:
    expect(secondary.get(path), 400, 102, rule)
    with unchanged(secondary):
        expect(secondary.put(path, [URL_VALUE]), 400, 102, rule)
        if path.endswith("/"):
            return  # DELETE of `prefix/` has no handle at all; covered by GET and PUT
        expect(secondary.delete(path), 400, 102, rule)


def test_malformed_identifier_is_echoed(secondary: Node) -> None:
    body = expect(secondary.get("88..168/X"), 400, 102)
    assert body["handle"] == "88..168/X"


@pytest.mark.parametrize(
    "path", ["88.999.1/X", "88.169.1/BOARD-LOT-2024-000001", "20.500.12345/X", "88.169", "88/X"]
)
def test_unknown_prefix_is_400_301(secondary: Node, path: str) -> None:
    expect(secondary.get(path), 400, 301, "does not home")
    with unchanged(secondary):
        expect(secondary.put(path, [URL_VALUE]), 400, 301, "does not home")
        expect(secondary.delete(path), 400, 301)


# --- unknown paths, methods and bodies ----------------------------------------------------


def test_unknown_path_is_404_json_with_response_code_4(secondary: Node) -> None:
    for path in ["/api/nope", "/whatever", "/api", "/api/handle/88.168.1/X", "/", "/api/nope/x"]:
        expect(secondary.call("GET", path), 404, 4, "no such API path")
        expect(secondary.call("PUT", path), 404, 4)
        expect(secondary.call("DELETE", path), 404, 4)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_wrong_method_is_405_json(secondary: Node, method: str) -> None:
    with unchanged(secondary):
        resp = secondary.call(method, f"/api/handles/{ITEM}", json=[URL_VALUE])
    assert resp.status_code == 405
    assert "PUT" in resp.headers["Allow"]
    assert "not allowed" in resp.get_json()["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "words"),
    [
        ('{"values": [', "application/json", ["not valid JSON"]),
        ("", "application/json", ["not valid JSON"]),
        ("{'values': []}", "application/json", ["not valid JSON"]),
        (b'{"values": "\xff\xfe"}', "application/json", ["UTF-8"]),
        (b"\xc3\x28", "application/json", ["UTF-8"]),
        ('{"values": []}', "text/plain", ["Content-Type", "application/json"]),
        ('{"values": []}', "application/x-www-form-urlencoded", ["Content-Type"]),
        ('{"values": []}', None, ["Content-Type"]),
        ("5", "application/json", ["body"]),
        ('"x"', "application/json", ["body"]),
        ("{}", "application/json", ["values"]),
        ("[" * 100 + "]" * 100, "application/json", ["nesting"]),
    ],
)
def test_bad_bodies_are_400_4(
    secondary: Node, data: str | bytes, content_type: str | None, words: list[str]
) -> None:
    kw: dict[str, Any] = {"data": data}
    if content_type:
        kw["content_type"] = content_type
    with unchanged(secondary):
        resp = secondary.put(ITEM, None, **kw)
    expect(resp, 400, 4, *words)


def test_json_media_type_with_charset_or_suffix_is_accepted(secondary: Node) -> None:
    data = json.dumps([URL_VALUE])
    for ctype in ("application/json; charset=utf-8", "application/vnd.handle+json"):
        expect(secondary.put(ITEM, None, data=data, content_type=ctype), 200, 1)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([{"index": 1, "type": "URL", "data": {"format": "hex", "value": "zz"}}], ["hex"]),
        ([{"index": -1, "type": "URL", "data": "x"}], ["values[0].index"]),
        ([{"index": 1.5, "type": "URL", "data": "x"}], ["values[0].index"]),
        ([{"index": True, "type": "URL", "data": "x"}], ["values[0].index"]),
        ([URL_VALUE, URL_VALUE], ["more than once"]),
        ({"index": 1}, ["must be a list"]),
        ([{"index": 1, "type": "URL"}], ["values[0].data"]),
    ],
)
def test_invalid_values_are_400_202(secondary: Node, values: Any, words: list[str]) -> None:
    with unchanged(secondary):
        resp = secondary.put(ITEM, {"values": values})
    expect(resp, 400, 202, *words)


def test_bad_query_parameters_are_400_4(secondary: Node) -> None:
    for query in ["?overwrite=maybe", "?mintNewSuffix=2", "?index=1&index=x", "?index=99999999999"]:
        with unchanged(secondary):
            resp = secondary.put(ITEM, [URL_VALUE], query=query)
        expect(resp, 400, 4)
    expect(secondary.get(ITEM + "?index=x"), 400, 4, "not an integer")
    expect(secondary.get(ITEM + "?index=-1"), 400, 4, "out of range")


# --- authentication and rights ------------------------------------------------------------


@STORES
def test_write_without_credentials_is_401_402_with_www_authenticate(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.put("88.168.1/NEW-4", [URL_VALUE], auth=None)
    expect(resp, 401, 402, "credentials")
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


@STORES
def test_wrong_secret_is_403_403(secondary: Node) -> None:
    with unchanged(secondary):
        resp = secondary.put("88.168.1/NEW-5", [URL_VALUE], auth=(ENTERPRISE_1[0], "guess"))
    expect(resp, 403, 403, "wrong secret")
    assert "WWW-Authenticate" not in resp.headers


def _raw_basic(text: bytes) -> str:
    return "Basic " + base64.b64encode(text).decode()


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "Basic",
        "Basic !!!not-base64!!!",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        _raw_basic(b"no-colon-at-all"),
        _raw_basic(b"admin:password"),
        _raw_basic(b"300%3A88.168.1:secret"),
        _raw_basic(b"\xff\xfe:\xff"),
        _raw_basic(b"300%3A88.169.1/ADMIN:demo-88.169.1-secret"),  # not on this node
        _raw_basic(b"300%3A88.168.1/NOPE:x"),  # no such admin handle
        _raw_basic(b"100%3A88.168.1/ADMIN:demo-88.168.1-secret"),  # index 100 is no secret
        _raw_basic(b"300%3A88..1/ADMIN:x"),  # not a handle
    ],
)
def test_unusable_credentials_are_403_404(secondary: Node, header: str) -> None:
    with unchanged(secondary):
        resp = secondary.put(
            "88.168.1/NEW-6", [URL_VALUE], auth=None, headers={"Authorization": header}
        )
    expect(resp, 403, 404)


@STORES
def test_identity_without_percent_encoding_is_accepted(secondary: Node) -> None:
    # `300:88.168.1/ADMIN:<secret>`: the identity's own ':' is not encoded.
    header = _raw_basic(f"{ENTERPRISE_1[0]}:{ENTERPRISE_1[1]}".encode())
    resp = secondary.put(
        "88.168.1/NEW-7", [URL_VALUE], auth=None, headers={"Authorization": header}
    )
    expect(resp, 201, 1)


@STORES
def test_identity_handle_is_case_insensitive(secondary: Node) -> None:
    expect(
        secondary.put("88.168.1/NEW-8", [URL_VALUE], auth=("300:88.168.1/admin", ENTERPRISE_1[1])),
        201,
        1,
    )


@STORES
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("88.168.2/NEW-9", ""),
        ("88.168.2/BED-2024-000001", ""),
        ("88.168.2/ADMIN", "?index=2"),
        ("0.NA/88.168.2", "?index=2"),
        ("0.NA/88.168.7", ""),
        ("88.168/ADMIN", "?index=2"),
    ],
)
def test_enterprise_cannot_write_under_another_enterprise(
    secondary: Node, path: str, query: str
) -> None:
    body = [_value(2, "DESC", "hijack")]
    with unchanged(secondary):
        resp = secondary.put(path, body, query=query)
    expect(resp, 403, 401, "300:88.168.1/ADMIN", "may not")


@STORES
def test_enterprise_cannot_touch_a_record_of_another_enterprise(secondary: Node) -> None:
    victim = "88.168.2/TEST-ITEM-2"
    values = [{**v, "data": {**v["data"]}} for v in ITEM_VALUES]
    values[2]["data"]["value"] = {"handle": "88.168.2/ADMIN", "index": 300}
    secondary.store.put_many([Record(victim, values)])
    with unchanged(secondary):
        expect(secondary.put(victim, [URL_VALUE], auth=ENTERPRISE_1), 403, 401)
        expect(secondary.put(victim, [URL_VALUE], auth=ENTERPRISE_1, query="?index=1"), 403, 401)
        expect(secondary.put(victim, [_value(9, "X", "x")], query="?index=9"), 403, 401)
        expect(secondary.delete(victim, auth=ENTERPRISE_1), 403, 401)
        expect(secondary.delete(victim, auth=ENTERPRISE_1, query="?index=1"), 403, 401)
    # Its own admin can.
    expect(secondary.put(victim, [URL_VALUE], auth=ENTERPRISE_2, query="?index=1"), 200, 1)


@STORES
@pytest.mark.parametrize("identity", [ENTERPRISE_1, TIMBER_ENTERPRISE, NODE_ADMIN])
def test_writing_on_another_nodes_prefix_is_400_301(
    secondary: Node, identity: tuple[str, str]
) -> None:
    with unchanged(secondary):
        resp = secondary.put("88.169.1/BOARD-LOT-X", [URL_VALUE], auth=identity)
    expect(resp, 400, 301, "88.168")


@STORES
@pytest.mark.parametrize("enterprise", ["88.168.1", "88.168.2"])
def test_node_admin_may_write_under_any_enterprise(secondary: Node, enterprise: str) -> None:
    handle = f"{enterprise}/BY-NODE-ADMIN"
    expect(secondary.put(handle, [URL_VALUE], auth=NODE_ADMIN), 201, 1)
    admin = secondary.values(handle)[100]["data"]["value"]
    assert admin["handle"] == "88.168/ADMIN"
    expect(secondary.put(handle, [_value(2, "D", "d")], auth=NODE_ADMIN, query="?index=2"), 200, 1)
    expect(secondary.delete(handle, auth=NODE_ADMIN), 200, 1)
    existing = f"{enterprise}/ADMIN"
    expect(
        secondary.put(existing, [_value(2, "DESC", "x")], auth=NODE_ADMIN, query="?index=2"), 200, 1
    )


@STORES
def test_node_admin_registers_a_new_enterprise_prefix(secondary: Node) -> None:
    admin = {
        "index": 100,
        "type": "HS_ADMIN",
        "data": {"format": "admin", "value": {"handle": "88.168.3/ADMIN", "index": 300}},
    }
    with unchanged(secondary):
        expect(secondary.put("88.168.3", [admin], auth=ENTERPRISE_1), 403, 401)
    expect(secondary.put("88.168.3", [admin], auth=NODE_ADMIN), 201, 1)
    seckey = {"index": 300, "type": "HS_SECKEY", "data": "three"}
    expect(secondary.put("88.168.3/ADMIN", [seckey, admin], auth=NODE_ADMIN), 201, 1)
    expect(secondary.put("88.168.3/P-1", [URL_VALUE], auth=("300:88.168.3/ADMIN", "three")), 201, 1)
    assert secondary.values("88.168.3")[100]["data"]["value"]["handle"] == "88.168.3/ADMIN"
