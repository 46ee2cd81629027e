"""The batch's fast value path (idcore.batch._plain_values) against the full pydantic path.

Whatever the fast path accepts it must store exactly as parse_values and RecordService's
preparation would (same keys, same order, same data); whatever the full path refuses
the fast path must leave to it (None), so that the full path refuses it in its own
words. Run over hand-picked edge cases and over generated values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idcore.batch import _plain_values
from idcore.errors import InvalidValue
from idcore.identifier import Handle
from idcore.records import RecordService
from idcore.signing import strip_signatures
from idcore.sqlite_store import SQLiteStore
from idcore.values import MAX_VALUE_BYTES, MAX_VALUES_PER_RECORD, parse_values

STAMP = "2024-06-01T08:00:00Z"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> RecordService:
    store = SQLiteStore(Path(tmp_path_factory.mktemp("fast")) / "x.sqlite3")

    def homes(handle: Handle) -> bool:
        return True

    return RecordService(store, admin_handle="88.168/ADMIN", homes=homes, describe_home="all")


def full_path(
    service: RecordService, raw: Any, max_values: int, max_bytes: int
) -> list[dict[str, Any]] | None:
    """What a single PUT (and a batch item off the fast path) stores; None if refused."""
    try:
        values = parse_values(
            strip_signatures(raw), max_values=max_values, max_value_bytes=max_bytes
        )
        return [service._prepare(v, STAMP) for v in values]
    except InvalidValue:
        return None


def check(
    service: RecordService,
    raw: Any,
    max_values: int = MAX_VALUES_PER_RECORD,
    max_bytes: int = MAX_VALUE_BYTES,
) -> list[dict[str, Any]] | None:
    """Assert the fast path agrees with the full path on `raw`; the fast path's answer."""
    expected = full_path(service, json.loads(json.dumps(raw)), max_values, max_bytes)
    sent = json.loads(json.dumps(raw))
    fast = _plain_values(sent, STAMP, max_values, max_bytes)
    if fast is not None:
        assert expected is not None, f"the fast path accepted what the full path refuses: {raw}"
        # json.dumps keeps key order: the stored text must be the same too.
        assert json.dumps(fast) == json.dumps(expected)
    else:
        # The fast path may have changed values in place before it gave up: the full
        # path must read them as it reads the values sent.
        again = full_path(service, sent, max_values, max_bytes)
        assert _comparable(again) == _comparable(expected)
    return fast


def _comparable(values: list[dict[str, Any]] | None) -> str:
    """The stored text, with salted secret hashes (never twice the same) blanked out."""
    if values is None:
        return "refused"
    out = []
    for value in values:
        if value["type"] == "HS_SECKEY":
            assert value["data"]["value"].startswith("scrypt$")
            value = {**value, "data": {**value["data"], "value": "(hash)"}}
        out.append(value)
    return json.dumps(out)


def _v(index: Any = 2, vtype: Any = "DESC", data: Any = "text", **extra: Any) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": data, **extra}


def _admin(**value: Any) -> dict[str, Any]:
    return _v(100, "HS_ADMIN", {"format": "admin", "value": value})


PLAIN = [
    _v(),
    _v(data={"format": "string", "value": "中文 text"}),
    _v(ttl=0),
    _v(ttl=2**40),
    _v(timestamp="2020-01-01T00:00:00Z"),
    _v(timestamp=None),
    _v(vtype=""),
    _v(vtype="T" * 255),
    _v(data="x" * 4000),
    _v(index=2**31 - 1),
    _admin(handle="88.168.1/ADMIN", index=300),
    _admin(handle="88.168.1/ADMIN", index=0, permissions="1"),
]

REFUSED = [
    _v(index=0),
    _v(index=-1),
    _v(index=2**31),
    _v(index=True),
    _v(index=1.0),
    _v(index=[1]),
    _v(vtype=None),
    _v(vtype=5),
    _v(vtype=["DESC"]),
    _v(vtype={"a": 1}),
    _v(vtype="T" * 256),
    _v(vtype="DESC\x00"),
    _v(vtype="DESC\x9b"),
    _v(data=None),
    _v(data=5),
    _v(data="x" * 4001),
    _v(data={"format": "string", "value": 5}),
    _v(data={"format": "string", "value": "x", "extra": 1}),
    _v(data={"format": "string"}),
    _v(data={"format": "hex", "value": "zz"}),
    _v(data={"format": "base64", "value": "!!"}),
    _v(data={"format": "nope", "value": "x"}),
    _v(ttl=-1),
    _v(ttl=True),
    _v(ttl=1.5),
    _v(ttl=None),
    _v(ttl="not a time"),
    _v(timestamp=5),
    _v(timestamp=["2020"]),
    _v(timestamp={"at": 1}),
    _v(permissions="11"),
    _admin(handle="", index=300),
    _admin(handle="x" * 256, index=300),
    _admin(handle="88.168.1/ADMIN", index=-1),
    _admin(handle="88.168.1/ADMIN", index=2**31),
    _admin(handle="88.168.1/ADMIN", index=True),
    _admin(handle="88.168.1/ADMIN", index=300, permissions="2"),
    _admin(handle="88.168.1/ADMIN", index=300, permissions="1" * 13),
    _admin(handle="88.168.1/ADMIN", index=300, permissions="1\n"),
    _admin(handle="88.168.1/ADMIN", index=300, other=1),
    _admin(handle=5, index=300),
    "not a value",
    None,
    [],
]

OFF_THE_FAST_PATH = [
    # Accepted, but by the full path: it words the stored form itself.
    _v(index="3"),
    _v(ttl="2030-01-01T00:00:00Z"),
    _v(permissions="1100"),
    _v(extra="ignored"),
    _v(vtype="HS_SECKEY", data="secret"),
    _v(data={"format": "hex", "value": "00ff"}),
    _admin(handle="88.168.1/ADMIN", index="300"),
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_take_the_fast_path(service: RecordService, value: Any) -> None:
    assert check(service, [value]) is not None


@pytest.mark.parametrize("value", REFUSED, ids=repr)
def test_what_the_full_path_refuses_leaves_the_fast_path(
    service: RecordService, value: Any
) -> None:
    assert full_path(service, [value], MAX_VALUES_PER_RECORD, MAX_VALUE_BYTES) is None
    assert check(service, [_v(1, "URL", "http://x"), value]) is None


@pytest.mark.parametrize("value", OFF_THE_FAST_PATH, ids=repr)
def test_unusual_values_are_left_to_the_full_path(service: RecordService, value: Any) -> None:
    assert full_path(service, [value], MAX_VALUES_PER_RECORD, MAX_VALUE_BYTES) is not None
    assert check(service, [value]) is None


def test_records_as_a_whole(service: RecordService) -> None:
    assert check(service, "not a list") is None
    assert check(service, [_v(2), _v(2, "URL")]) is None  # an index twice
    assert check(service, [_v(i) for i in range(1, 6)], max_values=5) is not None
    assert check(service, [_v(i) for i in range(1, 7)], max_values=5) is None
    # Signatures are dropped first, so they do not count against the limit.
    signed = [*(_v(i) for i in range(1, 6)), _v(400, "HS_SIGNATURE", "a.b.c")]
    fast = check(service, signed, max_values=5)
    assert fast is not None and [v["index"] for v in fast] == [1, 2, 3, 4, 5]
    assert check(service, [_v(1, "HS_SIGNATURE", data=5)]) == []


def test_a_node_s_smaller_byte_limit_is_kept(service: RecordService) -> None:
    # 64 characters fit 256 bytes whatever they are; beyond that the bytes are counted.
    assert check(service, [_v(data="床" * 64)], max_bytes=256) is not None
    assert check(service, [_v(data="床" * 85)], max_bytes=256) is not None  # 255 bytes
    assert check(service, [_v(data="床" * 86)], max_bytes=256) is None  # 258 bytes
    assert check(service, [_v(data="x" * 257)], max_bytes=256) is None
    # The admin value's compact JSON counts against the limit too.
    assert check(service, [_admin(handle="床" * 80, index=300)], max_bytes=256) is None
    assert check(service, [_admin(handle="床" * 20, index=300)], max_bytes=256) is not None


_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["DESC", "URL", "HS_ADMIN", "HS_SECKEY", "HS_SIGNATURE", "name", "a\x00"]),
)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=2**32),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
_DATA = st.one_of(
    _TEXT,
    _SCALAR,
    st.fixed_dictionaries(
        {"format": st.sampled_from(["string", "hex", "admin", "x"]), "value": _SCALAR}
    ),
    st.fixed_dictionaries(
        {"format": st.just("admin")},
        optional={
            "value": st.fixed_dictionaries(
                {},
                optional={
                    "handle": st.one_of(_TEXT, _SCALAR),
                    "index": _SCALAR,
                    "permissions": st.sampled_from(["1", "0101", "111111111111", "2", "", 7]),
                    "other": _SCALAR,
                },
            ),
            "extra": _SCALAR,
        },
    ),
)
_VALUE = st.fixed_dictionaries(
    {},
    optional={
        "index": st.one_of(st.integers(min_value=-1, max_value=5), _SCALAR),
        "type": st.one_of(_TEXT, _SCALAR),
        "data": _DATA,
        "ttl": st.one_of(st.integers(min_value=-1, max_value=10), _SCALAR),
        "timestamp": _SCALAR,
        "permissions": st.sampled_from(["1110", "1100", "x"]),
        "other": _SCALAR,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_VALUE, _SCALAR), max_size=4))
def test_generated_values_agree_with_the_full_path(service: RecordService, raw: list[Any]) -> None:
    check(service, raw)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "index": st.integers(min_value=1, max_value=6),
                "type": _TEXT,
                "data": st.one_of(
                    _TEXT, st.builds(lambda t: {"format": "string", "value": t}, _TEXT)
                ),
            },
            optional={"ttl": st.integers(min_value=0, max_value=10**6)},
        ),
        max_size=6,
    )
)
def test_generated_plain_records_agree_with_the_full_path(
    service: RecordService, raw: list[Any]
) -> None:
    check(service, raw)


@pytest.mark.parametrize("bad", [*REFUSED, *OFF_THE_FAST_PATH], ids=repr)
def test_values_changed_in_place_read_the_same_on_the_full_path(
    service: RecordService, bad: Any
) -> None:
    good = [
        _v(1, "URL", "http://x"),
        _admin(handle="88.168.1/ADMIN", index=300, permissions="1"),
        _v(3, data={"format": "string", "value": "y"}, ttl=5),
        _v(4, timestamp="2020-01-01T00:00:00Z", ttl=7),
    ]
    sent = json.loads(json.dumps([*good, bad]))
    assert _plain_values(sent, STAMP, MAX_VALUES_PER_RECORD, MAX_VALUE_BYTES) is None
    assert sent[:4] != good  # changed in place before the bad value was reached
    check(service, [*good, bad])


@pytest.mark.parametrize(
    "value",
    [
        {"type": "DESC", "index": 2, "data": "x"},
        {"index": 2, "type": "DESC", "ttl": 5, "data": "x"},
        {"index": 2, "type": "DESC", "data": "x", "timestamp": "t", "ttl": 5},
        {"data": {"value": "x", "format": "string"}, "index": 2, "type": "DESC"},
    ],
    ids=repr,
)
def test_any_key_order_is_stored_in_the_usual_order(service: RecordService, value: Any) -> None:
    fast = check(service, [value])
    assert fast is not None
    assert list(fast[0]) == ["index", "type", "data", "ttl", "timestamp"]
    assert list(fast[0]["data"]) == ["format", "value"]
