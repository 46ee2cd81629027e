"""Signing a batch's records from digest entries worked out in the value pass (idcore.signing).

A batch hands the signer a DigestedRecord: the values sorted by index with each one's
digest entry, made by the batch's fast value path (idcore.batch._plain_values) while it
checks the value. The signer then skips its own pass. Each piece is checked here against
the general construction it replaces: the same entries, the same signed record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idcore import signing
from idcore.batch import _plain_values
from idcore.errors import InvalidValue
from idcore.jws import canonical
from idcore.signing import (
    DigestedRecord,
    Signer,
    admin_entry,
    digest_entry,
    digested,
    digests,
    parse_signature,
    string_entry,
)
from idcore.store import Record
from idcore.values import MAX_VALUE_BYTES, MAX_VALUES_PER_RECORD

STAMP = "2024-06-01T08:00:00Z"
_TEXT = st.text(max_size=12)
_DATA = st.one_of(
    st.builds(lambda v: {"format": "string", "value": v}, _TEXT),
    st.builds(lambda v: {"format": "hex", "value": v}, st.sampled_from(["", "00ff"])),
    st.builds(
        lambda h, i, p: {"format": "admin", "value": {"handle": h, "index": i, "permissions": p}},
        _TEXT,
        st.integers(min_value=0, max_value=2**31 - 1),
        st.sampled_from(["111111111111", "010000000000"]),
    ),
    st.builds(lambda v: {"format": "key", "value": v}, st.dictionaries(_TEXT, _TEXT, max_size=2)),
    st.builds(lambda v: {"format": "vlist", "value": v}, st.just([{"handle": "a/b", "index": 1}])),
)
_VALUE = st.builds(
    lambda index, vtype, data, perms: {
        "index": index,
        "type": vtype,
        "data": data,
        "ttl": 86400,
        "timestamp": STAMP,
        **({"permissions": perms} if perms else {}),
    },
    st.integers(min_value=1, max_value=2**31 - 1),
    st.one_of(_TEXT, st.sampled_from(["URL", "HS_ADMIN", "HS_SECKEY", "TRACE.INPUT"])),
    _DATA,
    st.sampled_from([None, "1110", "1100"]),
)
_VALUES = st.lists(_VALUE, max_size=8, unique_by=lambda v: v["index"])


@pytest.fixture(autouse=True)
def _fixed_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    # The signature value's timestamp is the current second: pinned, so that two
    # signings of the same record compare equal whenever they run.
    monkeypatch.setattr(signing, "now_iso", lambda: STAMP)


def _signer(tmp: Path, anchor: str | None = None) -> Signer:
    return Signer(
        tmp,
        "furniture",
        issuer="furniture",
        prefix="88.168",
        anchor_handle=anchor,
        clock=lambda: 1_700_000_000,
    )


@settings(max_examples=300, deadline=None)
@given(_VALUE)
def test_a_value_s_entry_is_the_canonical_json_of_its_digests_entry(value: dict[str, Any]) -> None:
    expected = canonical(digests([value])[0]).decode("ascii")
    assert digest_entry(value) == expected
    assert digest_entry(value) == expected  # again: from the memo, for string and admin data


def test_string_and_admin_entries_are_those_of_their_values() -> None:
    text = {"index": 2000, "type": "name", "data": {"format": "string", "value": '衣柜 x\n"'}}
    assert string_entry(2000, "name", "string", '衣柜 x\n"') == digest_entry(text)
    ref = {"handle": "88.168.1/ADMIN", "index": 300, "permissions": "111111111111"}
    admin = {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": ref}}
    assert admin_entry(100, "HS_ADMIN", "88.168.1/ADMIN", 300, "111111111111") == digest_entry(
        admin
    )
    # Long text is hashed each time, never remembered; the memo stays bounded.
    signing._ENTRIES.clear()
    string_entry(1, "URL", "string", "x" * 500)
    admin_entry(100, "HS_ADMIN", "h" * 500, 300, "111111111111")
    assert not signing._ENTRIES
    for n in range(signing._ENTRIES_MAX + 5):
        admin_entry(100, "HS_ADMIN", f"88.168.1/A{n}", 300, "111111111111")
    assert len(signing._ENTRIES) <= signing._ENTRIES_MAX


@settings(max_examples=200, deadline=None)
@given(_VALUES, st.sampled_from(["88.168.1/X", "88.168.1/衣柜", "0.NA/88.168"]))
def test_a_digested_record_is_signed_as_the_plain_record(
    tmp_path_factory: pytest.TempPathFactory, values: list[dict[str, Any]], handle: str
) -> None:
    signer = _signer(tmp_path_factory.mktemp("keys"))
    entries = [digest_entry(v) for v in values]
    fast = digested(handle, list(values), entries)
    assert type(fast) is DigestedRecord
    try:
        expected = signer(Record(handle, list(values)))
    except InvalidValue as exc:  # index 400 taken: refused alike, in the same words
        with pytest.raises(InvalidValue) as refused:
            signer(fast)
        assert refused.value.message == exc.message
        return
    signed = signer(fast)
    assert type(signed) is Record
    assert signed == expected
    # The general path still serves a plain record the same way.
    assert signer(Record(handle, list(values))) == signed


def test_index_400_is_refused_alike(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    values = [
        {"index": i, "type": "URL", "data": {"format": "string", "value": "u"}} for i in (1, 400)
    ]
    with pytest.raises(InvalidValue) as plain:
        signer(Record("88.168.1/X", list(values)))
    with pytest.raises(InvalidValue) as fast:
        signer(digested("88.168.1/X", list(values), [digest_entry(v) for v in values]))
    assert fast.value.message == plain.value.message
    assert "reserved" in fast.value.message


def test_the_anchor_record_keeps_every_counter_signature(tmp_path: Path) -> None:
    signer = _signer(tmp_path, anchor="0.NA/88")
    signer.rotate()  # a retired key, which counter-signs the anchor
    values = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "u"}}]
    fast = signer(digested("0.NA/88", list(values), [digest_entry(values[0])]))
    assert fast == signer(Record("0.NA/88", list(values)))
    assert [v["index"] for v in fast.values] == [1, 400, 401]


def test_digested_sorts_values_and_entries_together() -> None:
    values = [
        {"index": i, "type": "T", "data": {"format": "string", "value": str(i)}}
        for i in (2000, 1, 500, 3)
    ]
    record = digested("88.168.1/X", values, [digest_entry(v) for v in values])
    assert [v["index"] for v in record.values] == [1, 3, 500, 2000]
    assert record.entries == [digest_entry(v) for v in record.values]
    assert [v["index"] for v in values] == [2000, 1, 500, 3]  # the caller's list as it was


@pytest.mark.parametrize(
    ("values", "entries"),
    [
        ([{"index": 1, "type": "T", "data": "x"}], []),
        ([{"index": "1", "type": "T", "data": "x"}], ["e"]),
        ([{"index": True, "type": "T", "data": "x"}], ["e"]),
        ([{"index": 400, "type": "HS_SIGNATURE", "data": "x"}], ["e"]),
    ],
    ids=["count", "text-index", "bool-index", "signature"],
)
def test_digested_refuses_what_it_cannot_vouch_for(
    values: list[dict[str, Any]], entries: list[str]
) -> None:
    with pytest.raises(ValueError):
        digested("88.168.1/X", values, entries)


_PLAIN = st.fixed_dictionaries(
    {
        "index": st.integers(min_value=1, max_value=9),
        "type": st.one_of(_TEXT, st.sampled_from(["URL", "HS_ADMIN", "HS_SIGNATURE"])),
        "data": st.one_of(
            _TEXT,
            st.builds(lambda t: {"format": "string", "value": t}, _TEXT),
            st.builds(
                lambda h, i, p: {
                    "format": "admin",
                    "value": {"handle": h, "index": i, "permissions": p},
                },
                st.text(min_size=1, max_size=8),
                st.integers(min_value=0, max_value=400),
                st.sampled_from(["1", "0101", "111111111111"]),
            ),
        ),
    },
    optional={"ttl": st.integers(min_value=0, max_value=10**6)},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PLAIN, max_size=6))
def test_the_fast_path_s_entries_are_those_of_the_values_it_returns(raw: list[Any]) -> None:
    entries: list[str] = []
    sent = json.loads(json.dumps(raw))
    out = _plain_values(sent, STAMP, MAX_VALUES_PER_RECORD, MAX_VALUE_BYTES, entries)
    if out is None:
        return  # the full path takes the item, and signs it the general way
    assert entries == [digest_entry(v) for v in out]
    # The same values without the entries: the same result.
    resent = json.loads(json.dumps(raw))
    again = _plain_values(resent, STAMP, MAX_VALUES_PER_RECORD, MAX_VALUE_BYTES)
    assert again == out


def test_a_signature_made_from_entries_verifies(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    raw = [
        {"index": 2000, "type": "name", "data": "三门衣柜"},
        {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x/1"}},
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {"format": "admin", "value": {"handle": "88.168.1/ADMIN", "index": 300}},
        },
    ]
    entries: list[str] = []
    out = _plain_values(raw, STAMP, MAX_VALUES_PER_RECORD, MAX_VALUE_BYTES, entries)
    assert out is not None
    signed = signer(digested("88.168.1/X", out, entries))
    assert [v["index"] for v in signed.values] == [1, 100, 400, 2000]
    token = parse_signature(signed.values[2])
    token.verify(signer.ring.current.public)
    assert signing.digest_problems(token.payload, signed.values) == []
    assert token.payload["digests"] == digests(out)
