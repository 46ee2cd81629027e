"""The signer's shortcuts give the very bytes of the plain construction (idcore.signing, jws).

The signature payload is spelled out by hand, digest entries are remembered, digest
inputs of string and admin values are formatted directly, base64url skips the base64
module, and a batch pins the key ring: each is checked here against what it replaces.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from idcore import jws, signing
from idcore.jws import b64url, canonical
from idcore.signing import (
    Signer,
    digest_input,
    digests,
    parse_signature,
    payload_json,
    value_digest,
)
from idcore.store import Record
from idcore.values import now_iso

_TEXT = st.text(max_size=20)
_INDEX = st.one_of(st.integers(min_value=1, max_value=2**31 - 1), st.sampled_from(["7", "300"]))
_DATA = st.one_of(
    st.builds(lambda f, v: {"format": f, "value": v}, st.sampled_from(["string", "hex"]), _TEXT),
    st.builds(
        lambda h, i, p: {"format": "admin", "value": {"handle": h, "index": i, "permissions": p}},
        _TEXT,
        st.integers(min_value=0, max_value=2**31 - 1),
        st.sampled_from(["111111111111", "010000000000"]),
    ),
    st.builds(lambda v: {"format": "admin", "value": v}, st.dictionaries(_TEXT, _TEXT, max_size=3)),
    st.builds(lambda v: {"format": "key", "value": v}, st.dictionaries(_TEXT, _TEXT, max_size=2)),
    st.builds(lambda v: {"format": "string", "value": v, "extra": 1}, st.text(max_size=3)),
    _TEXT,
)
_VALUE = st.builds(
    lambda index, vtype, data, perms: {
        "index": index,
        "type": vtype,
        "data": data,
        "ttl": 86400,
        "timestamp": "2024-01-01T00:00:00Z",
        **({"permissions": perms} if perms else {}),
    },
    _INDEX,
    st.one_of(_TEXT, st.sampled_from(["URL", "HS_ADMIN", "HS_SECKEY", "HS_SIGNATURE"])),
    _DATA,
    st.sampled_from([None, "", "1110", "1100", "0000"]),
)


def _unique(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    out = []
    for value in values:
        if int(value["index"]) not in seen:
            seen.add(int(value["index"]))
            out.append(value)
    return out


@settings(max_examples=300, deadline=None)
@given(_VALUE)
def test_the_digest_input_is_canonical_json(value: dict[str, Any]) -> None:
    content = {"index": value["index"], "type": value["type"], "data": value["data"]}
    assert digest_input(value) == canonical(content)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_VALUE, max_size=8).map(_unique),
    st.one_of(_TEXT, st.just("88.168.1/X")),
    st.integers(min_value=0, max_value=2**40),
)
def test_the_payload_is_the_canonical_json_of_the_payload_object(
    values: list[dict[str, Any]], subject: str, iat: int
) -> None:
    expected = canonical(
        {
            "iss": "furniture",
            "sub": subject,
            "iat": iat,
            "prefix": "88.168",
            "digests": digests(values),
        }
    )
    assert payload_json("furniture", subject, iat, "88.168", values) == expected
    # Twice: the second time the digest entries come from the memo.
    assert payload_json("furniture", subject, iat, "88.168", values) == expected


def test_the_entry_memo_stays_bounded_and_exact() -> None:
    signing._ENTRIES.clear()
    values = [
        {"index": 2, "type": "DESC", "data": {"format": "string", "value": f"v{n}"}}
        for n in range(signing._ENTRIES_MAX + 10)
    ]
    for value in values:
        assert payload_json("i", "s", 1, "p", [value]) == canonical(
            {"iss": "i", "sub": "s", "iat": 1, "prefix": "p", "digests": digests([value])}
        )
    assert len(signing._ENTRIES) <= signing._ENTRIES_MAX
    # Long values are hashed every time, never kept.
    signing._ENTRIES.clear()
    long_value = {"index": 2, "type": "DESC", "data": {"format": "string", "value": "x" * 500}}
    payload_json("i", "s", 1, "p", [long_value])
    assert not signing._ENTRIES
    # Equal text, different kind of index or type: never the same entry.
    payload_json("i", "s", 1, "p", [{**long_value, "data": {"format": "string", "value": "x"}}])
    as_text = {"index": "2", "type": "DESC", "data": {"format": "string", "value": "x"}}
    assert b'"index":"2"' in payload_json("i", "s", 1, "p", [as_text])


@settings(max_examples=300, deadline=None)
@given(_VALUE)
def test_a_remembered_digest_is_the_digest_of_the_value(value: dict[str, Any]) -> None:
    expected = b64url(
        hashlib.sha256(
            canonical({"index": value["index"], "type": value["type"], "data": value["data"]})
        ).digest()
    )
    assert value_digest(value) == expected
    assert value_digest(value) == expected  # the second time from the memo, if kept


def test_the_digest_memo_stays_bounded_and_tells_values_apart() -> None:
    signing._DIGESTS.clear()
    for n in range(signing._ENTRIES_MAX + 10):
        value_digest({"index": 2, "type": "DESC", "data": {"format": "string", "value": f"v{n}"}})
    assert 0 < len(signing._DIGESTS) <= signing._ENTRIES_MAX
    signing._DIGESTS.clear()
    value_digest({"index": 2, "type": "DESC", "data": {"format": "string", "value": "x" * 500}})
    assert not signing._DIGESTS, "long values are hashed every time, never kept"
    # The same text under another index, type or format: another digest.
    base = {"index": 2, "type": "DESC", "data": {"format": "string", "value": "x"}}
    variants = [
        base,
        {**base, "index": 3},
        {**base, "type": "NAME"},
        {**base, "data": {"format": "hex", "value": "x"}},
        {**base, "index": True},
    ]
    assert len({value_digest(v) for v in variants}) == len(variants)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_b64url_is_the_base64_module_s(raw: bytes) -> None:
    assert b64url(raw) == base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_signing_canonical_bytes_is_signing_the_payload(tmp_path: Path) -> None:
    key = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168").ring.current
    payload = {"iss": "furniture", "sub": "88.168.1/X", "digests": [{"index": 1, "sha256": "a"}]}
    # Ed25519 signatures are deterministic: the same input gives the same token.
    token = jws.sign_canonical(canonical(payload), key.private, key.kid)
    assert token == jws.sign(payload, key.private, key.kid)
    assert jws.verify(token, key.public) == payload


def test_a_signed_record_carries_the_payload_of_its_values(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168", clock=lambda: 9)
    values = [
        {"index": 2000, "type": "name", "data": {"format": "string", "value": "桌"}},
        {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x"}},
        {"index": 300, "type": "HS_SECKEY", "data": {"format": "string", "value": "h"},
         "permissions": "1100"},
        {"index": 401, "type": "HS_SIGNATURE", "data": {"format": "string", "value": "old"}},
    ]  # fmt: skip
    signed = signer(Record("88.168.1/X", values))
    assert [v["index"] for v in signed.values] == [1, 300, 400, 2000]
    token = parse_signature(signed.values[2])
    token.verify(signer.ring.current.public)
    kept = [v for v in values if v["type"] != "HS_SIGNATURE"]
    assert token.payload == {
        "iss": "furniture",
        "sub": "88.168.1/X",
        "iat": 9,
        "prefix": "88.168",
        "digests": digests(kept),
    }


def test_a_session_pins_the_ring_until_it_ends(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168")
    other = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168")  # "another process"
    record = Record("88.168.1/X", [{"index": 1, "type": "URL", "data": "u"}])

    def kid() -> str:
        return parse_signature(signer(record).values[1]).kid

    first = kid()
    with signer.session():
        time.sleep(0.01)  # a new mtime for keyring.json
        rotated = other.rotate().current.kid
        assert kid() == first
        with signer.session():  # nested: the outer session holds
            assert kid() == first
        assert kid() == first
    assert kid() == rotated != first


def test_now_iso_is_the_current_utc_second() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = now_iso()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert before <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= after
