"""Every limit of a write: refused with its response code and a message naming the limit,
before anything is stored; at the limit itself, accepted. Limits come from the settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idcore.batch import MAX_BATCH
from idcore.identifier import MAX_HANDLE_BYTES, MAX_PREFIX_BYTES
from idcore.settings import NodeSettings
from idcore.values import MAX_JSON_DEPTH, MAX_VALUE_BYTES, MAX_VALUE_CHARS, MAX_VALUES_PER_RECORD
from tests.integration.conftest import NODE_ADMIN, STORES, Node, basic, expect, unchanged


def _value(index: int, text: str, vtype: str = "DESC") -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}}


def test_defaults_are_documented_settings() -> None:
    settings = NodeSettings()
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.max_values_per_record == MAX_VALUES_PER_RECORD == 1000
    assert settings.max_value_bytes == MAX_VALUE_BYTES == 16384
    assert settings.max_json_depth == MAX_JSON_DEPTH == 32
    # Every string within the character limit fits the byte limit (4 bytes per character).
    assert MAX_VALUE_BYTES >= 4 * MAX_VALUE_CHARS
    for name in ("max_body_bytes", "max_value_bytes", "auth_max_failures"):
        assert NodeSettings.model_fields[name].description


# --- body size -------------------------------------------------------------------------


@STORES
def test_body_over_the_limit_is_413_naming_it(make_node: Any, store_kind: str) -> None:
    node: Node = make_node("furniture", store_kind, max_body_bytes=4096)
    small = json.dumps([_value(2, "x" * 3000)])
    expect(node.put("88.168.1/B-1", None, data=small, content_type="application/json"), 201, 1)
    big = json.dumps([_value(2, "x" * 4100)])
    with unchanged(node):
        resp = node.put("88.168.1/B-2", None, data=big, content_type="application/json")
    expect(resp, 413, 4, "too large", "limit is 4096 bytes")


def test_default_body_limit_is_8_mib(make_node: Any) -> None:
    node: Node = make_node("furniture")
    body = b'{"values": [' + b" " * (8 * 1024 * 1024) + b"]}"
    with unchanged(node):
        resp = node.put("88.168.1/B-3", None, data=body, content_type="application/json")
    expect(resp, 413, 4, "limit is 8388608 bytes")


# --- values per record ----------------------------------------------------------------------


@STORES
def test_values_per_record(make_node: Any, store_kind: str) -> None:
    node: Node = make_node("furniture", store_kind, max_values_per_record=5)
    with unchanged(node):
        six = [_value(i, "v") for i in range(1, 7)]
        expect(node.put("88.168.1/V-1", six), 400, 202, "6 values", "limit is 5 values per record")
        # Five values plus the HS_ADMIN a create adds would be six.
        five = [_value(i, "v") for i in range(1, 6)]
        expect(node.put("88.168.1/V-1", five), 400, 202, "would hold 6 values", "limit is 5")
    expect(node.put("88.168.1/V-1", five[:4]), 201, 1)  # 4 + HS_ADMIN = 5
    with unchanged(node):
        # A partial update may not grow the record past the limit either.
        resp = node.put("88.168.1/V-1", [_value(9, "v")], query="?index=9")
        expect(resp, 400, 202, "would hold 6 values", "limit is 5 values per record")
    expect(node.put("88.168.1/V-1", [_value(1, "changed")], query="?index=1"), 200, 1)


# --- bytes per value ----------------------------------------------------------------------


@STORES
def test_bytes_per_value_count_utf8_bytes(make_node: Any, store_kind: str) -> None:
    node: Node = make_node("furniture", store_kind, max_value_bytes=1000)
    expect(node.put("88.168.1/U-1", [_value(2, "x" * 1000)]), 201, 1)
    expect(node.put("88.168.1/U-2", [_value(2, "床" * 333)]), 201, 1)  # 999 bytes
    with unchanged(node):
        # 334 characters, but 1002 bytes in UTF-8.
        resp = node.put("88.168.1/U-3", [_value(2, "床" * 334)])
        expect(resp, 400, 202, "1002 bytes (UTF-8)", "limit is 1000 bytes per value")
        emoji = node.put("88.168.1/U-3", [_value(2, "🪵" * 251)])  # 4 bytes each
        expect(emoji, 400, 202, "1004 bytes (UTF-8)")
        # Structured data counts as its compact JSON.
        key = {
            "index": 300,
            "type": "HS_PUBKEY",
            "data": {"format": "key", "value": {"kty": "OKP", "x": "A" * 1000}},
        }
        expect(node.put("88.168.1/U-3", [key]), 400, 202, "limit is 1000 bytes per value")
        site = {
            "index": 1,
            "type": "HS_SITE",
            "data": {
                "format": "site",
                "value": {"servers": [{"address": "127.0.0.1", "desc": "節" * 400}]},
            },
        }
        expect(node.put("88.168.1/U-3", [site]), 400, 202, "bytes (UTF-8)")


def test_characters_per_string_value(make_node: Any) -> None:
    node: Node = make_node("furniture")
    # The default byte limit admits any string within the character limit ...
    expect(node.put("88.168.1/C-1", [_value(2, "🪵" * MAX_VALUE_CHARS)]), 201, 1)
    with unchanged(node):
        # ... and the character limit (PROTOCOL.md: enterprise-node strings) holds.
        resp = node.put("88.168.1/C-2", [_value(2, "x" * (MAX_VALUE_CHARS + 1))])
        expect(resp, 400, 202, f"{MAX_VALUE_CHARS + 1} characters", "limit is 4000 characters")


# --- handle and prefix length ----------------------------------------------------------------


def test_handle_length_counts_utf8_bytes(make_node: Any) -> None:
    node: Node = make_node("furniture")
    stem = "88.168.1/"
    fits = stem + "床" * ((MAX_HANDLE_BYTES - len(stem)) // 3)  # 9 + 246 = 255 bytes
    assert len(fits.encode()) == MAX_HANDLE_BYTES
    expect(node.put(fits, [_value(2, "x")]), 201, 1)
    with unchanged(node):
        resp = node.put(fits + "x", [_value(2, "x")])
        expect(resp, 400, 102, f"{MAX_HANDLE_BYTES + 1} bytes", "limit is 255 bytes")


def test_prefix_length(make_node: Any) -> None:
    node: Node = make_node("furniture")
    prefix = "88.168." + "1" * (MAX_PREFIX_BYTES - 7)
    admin = {
        "index": 100,
        "type": "HS_ADMIN",
        "data": {"format": "admin", "value": {"handle": NODE_ADMIN[0][4:], "index": 300}},
    }
    expect(node.put(prefix, [admin], auth=NODE_ADMIN), 201, 1)
    with unchanged(node):
        resp = node.put(prefix + "1", [admin], auth=NODE_ADMIN)
        expect(resp, 400, 102, f"{MAX_PREFIX_BYTES + 1} bytes", "limit is 64 bytes")
        expect(node.put(prefix + "1/X", [_value(2, "x")]), 400, 102, "limit is 64 bytes")


# --- JSON nesting -------------------------------------------------------------------------------


def _nested(levels: int) -> Any:
    node: Any = "x"
    for _ in range(levels):
        node = {"a": node}
    return node


@STORES
def test_json_nesting(make_node: Any, store_kind: str) -> None:
    node: Node = make_node("furniture", store_kind, max_json_depth=8)

    # body list (1) > value (2) > data (3) > key value (4) > 4 more levels = 8.
    def body(levels: int) -> list[dict[str, Any]]:
        data = {"format": "key", "value": _nested(levels)}
        return [{"index": 300, "type": "HS_PUBKEY", "data": data}]

    expect(node.put("88.168.1/J-1", body(5)), 201, 1)
    with unchanged(node):
        expect(node.put("88.168.1/J-2", body(6)), 400, 4, "nesting", "limit of 8 levels")
        deep = "[" * 100_000 + "]" * 100_000  # deeper than the parser itself goes
        resp = node.put("88.168.1/J-2", None, data=deep, content_type="application/json")
        expect(resp, 400, 4, "nesting")


# --- batch size ---------------------------------------------------------------------------------


def test_batch_size(make_node: Any) -> None:
    node: Node = make_node("furniture")
    items = [
        {"handle": f"88.168.1/M-{n}", "values": [_value(2, "x")]} for n in range(MAX_BATCH + 1)
    ]
    with unchanged(node):
        resp = node.call(
            "POST",
            "/api/batch/handles",
            json={"handles": items},
            headers={"Authorization": basic(NODE_ADMIN)},
        )
    expect(resp, 400, 4, f"{MAX_BATCH + 1} items", f"limit is {MAX_BATCH}")


@pytest.mark.parametrize("count", [MAX_VALUES_PER_RECORD + 1])
def test_values_per_record_default(make_node: Any, count: int) -> None:
    node: Node = make_node("furniture")
    with unchanged(node):
        resp = node.put("88.168.1/MANY", [_value(i, "v") for i in range(1, count + 1)])
    expect(resp, 400, 202, f"limit is {MAX_VALUES_PER_RECORD} values per record")
