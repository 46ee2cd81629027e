"""Handle values as the REST API carries them: every data format, and clear refusals."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idcore.errors import InvalidValue
from idcore.values import (
    ADMIN_PERMISSION_BITS,
    DEFAULT_TTL,
    MAX_VALUE_CHARS,
    MAX_VALUES_PER_RECORD,
    AdminRef,
    HandleValue,
    admin_refs,
    parse_values,
    value_is_public,
)

SITE = {
    "version": 1,
    "protocolVersion": "2.10",
    "serialNumber": 1,
    "primarySite": True,
    "multiPrimary": False,
    "attributes": [{"name": "baseUrl", "value": "http://127.0.0.1:8101"}],
    "servers": [
        {
            "serverId": 1,
            "address": "127.0.0.1",
            "publicKey": {"format": "key", "value": {}},
            "interfaces": [{"query": True, "admin": True, "protocol": "HTTP", "port": 8101}],
        }
    ],
}
JWK = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x"}


def _one(data: Any, vtype: str = "X", **extra: Any) -> HandleValue:
    values = parse_values([{"index": 1, "type": vtype, "data": data, **extra}])
    assert len(values) == 1
    return values[0]


def _refused(raw: Any) -> str:
    with pytest.raises(InvalidValue) as info:
        parse_values(raw)
    assert info.value.code == 202
    return info.value.message


# --- every data format ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("string", "http://127.0.0.1:8000/t/88.168.1/WARD-2024-000123"),
        ("string", "衣柜（演示） / wardrobe (demo)"),
        ("string", ""),
        ("base64", base64.b64encode(b"\x00\x01binary\xff").decode()),
        ("base64", ""),
        ("hex", "00ff10AB"),
        ("hex", ""),
        ("admin", {"handle": "88.168.1/ADMIN", "index": 300, "permissions": "011111110011"}),
        ("vlist", [{"handle": "88.168.1/ADMIN", "index": 300}, {"handle": "88.168/A", "index": 1}]),
        ("vlist", []),
        ("site", SITE),
        ("key", JWK),
        ("key", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"),
    ],
)
def test_every_data_format_is_accepted_and_shown_unchanged(fmt: str, value: Any) -> None:
    parsed = _one({"format": fmt, "value": value})
    wire = parsed.to_wire()
    assert wire["data"] == {"format": fmt, "value": value}
    assert wire["index"] == 1
    assert wire["type"] == "X"
    assert wire["ttl"] == DEFAULT_TTL
    assert "timestamp" in wire


def test_bare_string_data_means_format_string() -> None:
    parsed = _one("http://example.com/x", vtype="URL")
    assert parsed.to_wire()["data"] == {"format": "string", "value": "http://example.com/x"}


@given(st.text(max_size=200))
def test_any_string_round_trips_through_the_wire_form(text: str) -> None:
    wire = _one(text).to_wire()
    assert wire["data"] == {"format": "string", "value": text}
    assert parse_values([wire])[0].to_wire()["data"] == wire["data"]


@given(st.binary(max_size=300))
def test_any_bytes_as_base64_and_hex_are_accepted(blob: bytes) -> None:
    assert _one({"format": "base64", "value": base64.b64encode(blob).decode()})
    assert _one({"format": "hex", "value": blob.hex()})


def test_admin_index_may_be_a_string_as_pyhandle_sends_it() -> None:
    # pyhandle's register_handle sends HS_ADMIN with "index": "200".
    parsed = _one(
        {"format": "admin", "value": {"handle": "88.168.1/ADMIN", "index": "200"}},
        vtype="HS_ADMIN",
    )
    assert parsed.to_wire()["data"]["value"] == {
        "handle": "88.168.1/ADMIN",
        "index": 200,
        "permissions": "111111111111",
    }


def test_short_admin_permissions_are_padded_with_zeros() -> None:
    ref = AdminRef(handle="88.168.1/ADMIN", index=300, permissions="11")
    assert ref.permissions == "110000000000"
    assert ref.allows("listHandles")
    assert ref.allows("readValue")
    assert not ref.allows("addHandle")


@pytest.mark.parametrize("position", range(12))
def test_admin_permission_bits_are_most_significant_first(position: int) -> None:
    bits = ["0"] * 12
    bits[position] = "1"
    ref = AdminRef(handle="88.168.1/ADMIN", index=300, permissions="".join(bits))
    granted = [name for name in ADMIN_PERMISSION_BITS if ref.allows(name)]
    assert granted == [ADMIN_PERMISSION_BITS[position]]
    assert ADMIN_PERMISSION_BITS[0] == "listHandles"
    assert ADMIN_PERMISSION_BITS[-1] == "addHandle"


def test_admin_refs_lists_only_hs_admin_values() -> None:
    wire = [
        v.to_wire()
        for v in parse_values(
            [
                {"index": 1, "type": "URL", "data": "x"},
                {
                    "index": 100,
                    "type": "HS_ADMIN",
                    "data": {
                        "format": "admin",
                        "value": {"handle": "88.168.1/ADMIN", "index": 300},
                    },
                },
                {
                    "index": 101,
                    "type": "HS_ADMIN",
                    "data": {
                        "format": "admin",
                        "value": {"handle": "88.168/ADMIN", "index": "300"},
                    },
                },
            ]
        )
    ]
    assert [(r.handle, r.index) for r in admin_refs(wire)] == [
        ("88.168.1/ADMIN", 300),
        ("88.168/ADMIN", 300),
    ]


# --- ttl, permissions, timestamp ------------------------------------------------


def test_ttl_is_relative_seconds_or_an_iso_expiry() -> None:
    assert _one("x", ttl=0).ttl == 0
    assert _one("x", ttl=3600).ttl == 3600
    assert _one("x", ttl="2030-01-01T00:00:00Z").to_wire()["ttl"] == "2030-01-01T00:00:00Z"
    assert _one("x", ttl="2030-01-01T08:00:00+08:00").ttl == "2030-01-01T08:00:00+08:00"


@pytest.mark.parametrize("ttl", [-1, "soon", "", 1.5, True, None, [60]])
def test_bad_ttl_is_refused(ttl: Any) -> None:
    message = _refused([{"index": 1, "type": "X", "data": "x", "ttl": ttl}])
    assert "values[0].ttl" in message


def test_public_permissions_are_not_shown_and_others_are() -> None:
    assert "permissions" not in _one("x", permissions="1110").to_wire()
    assert "permissions" not in _one("x").to_wire()
    assert _one("x", permissions="1100").to_wire()["permissions"] == "1100"


@pytest.mark.parametrize(("perms", "public"), [(None, True), ("1110", True), ("1111", True)])
def test_value_is_public(perms: str | None, public: bool) -> None:
    value: dict[str, Any] = {"index": 1, "type": "X"}
    if perms:
        value["permissions"] = perms
    assert value_is_public(value) is public


@pytest.mark.parametrize("perms", ["1100", "0000", "1000", "0101"])
def test_values_without_public_read_are_hidden(perms: str) -> None:
    assert not value_is_public({"index": 300, "type": "HS_SECKEY", "permissions": perms})


@pytest.mark.parametrize("perms", ["111", "11100", "abcd", "2110"])
def test_bad_value_permissions_are_refused(perms: str) -> None:
    assert "values[0].permissions" in _refused(
        [{"index": 1, "type": "X", "data": "x", "permissions": perms}]
    )


def test_client_timestamp_is_kept_but_a_missing_one_is_filled_in() -> None:
    assert _one("x", timestamp="2024-10-15T08:00:00Z").to_wire()["timestamp"] == (
        "2024-10-15T08:00:00Z"
    )
    assert _one("x").to_wire()["timestamp"].endswith("Z")


# --- index ------------------------------------------------------------------


def test_index_may_be_a_decimal_string() -> None:
    assert parse_values([{"index": "3", "type": "X", "data": "x"}])[0].index == 3


@pytest.mark.parametrize("index", [0, -1, -300, 2**31, 1.0, 1.5, True, False, "1.5", "x", None])
def test_bad_index_is_refused_naming_the_field(index: Any) -> None:
    message = _refused([{"index": index, "type": "X", "data": "x"}])
    assert "values[0].index" in message


@given(st.integers(min_value=1, max_value=2**31 - 1))
def test_every_positive_32_bit_index_is_accepted(index: int) -> None:
    assert parse_values([{"index": index, "type": "X", "data": "x"}])[0].index == index


def test_duplicate_indexes_are_refused() -> None:
    message = _refused(
        [
            {"index": 1, "type": "URL", "data": "a"},
            {"index": 2, "type": "DESC", "data": "b"},
            {"index": "1", "type": "EMAIL", "data": "c"},
        ]
    )
    assert "index 1 appears more than once" in message


@pytest.mark.parametrize("index", [True, 1.0, -1, "x"])
def test_bad_admin_index_is_refused(index: Any) -> None:
    message = _refused(
        [
            {
                "index": 100,
                "type": "HS_ADMIN",
                "data": {"format": "admin", "value": {"handle": "88.168.1/ADMIN", "index": index}},
            }
        ]
    )
    assert "values[0].data" in message
    assert "index" in message


@pytest.mark.parametrize("index", [True, 2.0, -1])
def test_bad_vlist_index_is_refused(index: Any) -> None:
    message = _refused(
        [
            {
                "index": 1,
                "type": "HS_VLIST",
                "data": {"format": "vlist", "value": [{"handle": "88.168.1/X", "index": index}]},
            }
        ]
    )
    assert "values[0].data" in message


# --- refused data, with a message that says what is wrong ---------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"format": "bogus", "value": "x"}, ["values[0].data.format", "'string'"]),
        ({"format": "string", "value": 5}, ["values[0].data", "format 'string' must be a string"]),
        ({"format": "string", "value": None}, ["values[0].data", "must be a string"]),
        ({"format": "base64", "value": "not base64!"}, ["values[0].data", "not valid base64"]),
        ({"format": "base64", "value": 12}, ["values[0].data", "must be a string"]),
        ({"format": "hex", "value": "xyz"}, ["values[0].data", "not valid hex"]),
        ({"format": "hex", "value": "abc"}, ["values[0].data", "not valid hex"]),
        ({"format": "admin", "value": "88.168.1/ADMIN"}, ["values[0].data"]),
        ({"format": "admin", "value": {"handle": "88.168.1/ADMIN"}}, ["values[0].data", "index"]),
        (
            {"format": "admin", "value": {"handle": "a/b", "index": 1, "permissions": "12"}},
            ["values[0].data", "permissions"],
        ),
        (
            {"format": "admin", "value": {"handle": "a/b", "index": 1, "extra": 1}},
            ["values[0].data", "extra"],
        ),
        ({"format": "admin", "value": {"handle": "", "index": 1}}, ["values[0].data", "handle"]),
        ({"format": "vlist", "value": "88.168.1/X"}, ["values[0].data", "'vlist' must be a list"]),
        ({"format": "vlist", "value": [{"handle": "a/b"}]}, ["values[0].data", "index"]),
        ({"format": "site", "value": {}}, ["values[0].data", "'servers' list"]),
        ({"format": "site", "value": "127.0.0.1:8101"}, ["values[0].data", "'site'"]),
        ({"format": "key", "value": 5}, ["values[0].data", "JWK"]),
        ({"value": "x"}, ["values[0].data.format", "required"]),
        ({"format": "string"}, ["values[0].data.value", "required"]),
        ({"format": "string", "value": "x", "extra": 1}, ["values[0].data.extra"]),
        (5, ["values[0].data"]),
        (None, ["values[0].data"]),
        (["x"], ["values[0].data"]),
    ],
)
def test_bad_data_is_refused_with_a_clear_message(data: Any, words: list[str]) -> None:
    message = _refused([{"index": 1, "type": "X", "data": data}])
    assert message.startswith("invalid value: ")
    for word in words:
        assert word in message, (word, message)


def test_string_data_over_the_limit_is_refused() -> None:
    assert _one("x" * MAX_VALUE_CHARS)
    message = _refused([{"index": 1, "type": "X", "data": "x" * (MAX_VALUE_CHARS + 1)}])
    assert f"the limit is {MAX_VALUE_CHARS}" in message


def test_type_over_255_characters_is_refused() -> None:
    assert "values[0].type" in _refused([{"index": 1, "type": "T" * 256, "data": "x"}])


@pytest.mark.parametrize(
    "item", [{"type": "X", "data": "x"}, {"index": 1, "data": "x"}, {"index": 1, "type": "X"}]
)
def test_missing_fields_are_named(item: dict[str, Any]) -> None:
    missing = ({"index", "type", "data"} - set(item)).pop()
    message = _refused([item])
    assert f"values[0].{missing}" in message
    assert "required" in message.lower()


def test_every_problem_is_reported_with_its_position() -> None:
    with pytest.raises(InvalidValue) as info:
        parse_values(
            [
                {"index": 1, "type": "URL", "data": "ok"},
                {"index": -2, "type": "URL", "data": "x"},
                {"index": 3, "type": "URL", "data": {"format": "hex", "value": "zz"}},
            ]
        )
    message = info.value.message
    assert "values[1].index" in message
    assert "values[2].data" in message
    assert "values[0]" not in message
    assert len(info.value.details["problems"]) == 2


@pytest.mark.parametrize("raw", [{"index": 1}, "x", None, 5])
def test_values_must_be_a_list(raw: Any) -> None:
    assert "must be a list" in _refused(raw)


def test_a_value_must_be_an_object() -> None:
    assert "values[0]" in _refused(["http://example.com"])


def test_too_many_values_are_refused() -> None:
    raw = [{"index": i, "type": "X", "data": "x"} for i in range(1, MAX_VALUES_PER_RECORD + 2)]
    assert f"the limit is {MAX_VALUES_PER_RECORD}" in _refused(raw)


def test_empty_list_is_no_values() -> None:
    assert parse_values([]) == []


def test_unknown_value_members_are_ignored() -> None:
    parsed = _one("x", auth=True, refs=[])
    assert "auth" not in parsed.to_wire()
