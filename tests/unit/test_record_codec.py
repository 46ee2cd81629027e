"""The compact record format (idcore/record_codec.py): exact round trips, sizes, old blobs."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from idcore import jws, record_codec
from idcore.demo import build_demo
from idcore.record_codec import DICTIONARY_1, FORMAT_DEFLATE_1, decode, encode
from idcore.signing import SIGNATURE_INDEX, Signer, digest_problems, digests, parse_signature
from idcore.store import Record
from idcore.topology import load_topology

KEY = Ed25519PrivateKey.generate()
NON_ASCII = ["三门推拉衣柜（演示）", "E0级刨花板、中密度纤维板", "1800×600×2200", "Ünïcödé ✓", "🪵"]


def _value(index: int, vtype: str, text: str) -> dict[str, Any]:
    """A string value as a node stores it."""
    return {
        "index": index,
        "type": vtype,
        "data": {"format": "string", "value": text},
        "ttl": 86400,
        "timestamp": "2026-01-02T03:04:05Z",
    }


def _signature(values: list[dict[str, Any]], handle: str, **change: Any) -> dict[str, Any]:
    """An HS_SIGNATURE value over `values` as a node makes it (payload fields overridable)."""
    payload = {"iss": "furniture", "sub": handle, "iat": 7, "prefix": "88.168"}
    payload["digests"] = digests(values)
    payload.update(change)
    return _value(SIGNATURE_INDEX, "HS_SIGNATURE", jws.sign(payload, KEY, "k1"))


def _signed(handle: str, values: list[dict[str, Any]]) -> Record:
    """A record of `values` and a signature over them, sorted by index."""
    return Record(handle, sorted([*values, _signature(values, handle)], key=lambda v: v["index"]))


def _token(record: Record) -> str:
    """The JWS text of a record's (first) HS_SIGNATURE value."""
    return str(next(v for v in record.values if v["type"] == "HS_SIGNATURE")["data"]["value"])


def _assert_round_trip(record: Record) -> bytes:
    """Encode and decode; the record comes back equal, in the same order, byte for byte."""
    blob = encode(record)
    back = decode(blob)
    assert back == record
    assert back.dumps() == record.dumps()
    return blob


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Record:
    """The demo's sample product, signed by a furniture node key as a batch write signs it."""
    demo = build_demo(load_topology(), 2024, "http://127.0.0.1:8000")
    handle = "88.168.1/B0000042"  # a benchmark copy: its own handle, serial and URL
    serial = handle.split("/", 1)[1]
    text = json.dumps(demo.records()[demo.product], ensure_ascii=False)
    values = json.loads(text.replace(demo.product, handle).replace("WARD-2024-000123", serial))
    keys: Path = tmp_path_factory.mktemp("keys")
    signer = Signer(keys, "furniture", issuer="furniture", prefix="88.168")
    return signer(Record(handle, values))


# -- the demo product ------------------------------------------------------------------------


def test_a_signed_demo_product_is_under_a_tenth_of_its_json(product: Record) -> None:
    blob = _assert_round_trip(product)
    plain = len(product.dumps().encode())
    assert blob[0] == FORMAT_DEFLATE_1
    # Within Redis's 512-byte allocation class with the answer index (300 bytes without).
    assert plain > 6000 and len(blob) <= 506, (plain, len(blob))


def test_the_signature_verifies_after_a_round_trip(product: Record) -> None:
    back = decode(encode(product))
    assert _token(back) == _token(product)
    token = parse_signature(next(v for v in back.values if v["type"] == "HS_SIGNATURE"))
    assert digest_problems(token.payload, back.values) == []


def test_every_digest_of_a_fresh_signature_is_cut_out(product: Record) -> None:
    # The codec's frozen digest is the signer's: otherwise nothing would be cut out.
    _, signatures, _ = record_codec._split(product.values)
    [(position, indexes, _, header, pieces)] = signatures
    assert product.values[position]["type"] == "HS_SIGNATURE"
    assert header.startswith(b'{"alg":"EdDSA","kid":')
    assert indexes == [v["index"] for v in product.values if v["type"] != "HS_SIGNATURE"]
    assert all(p.endswith(b'"sha256":"') for p in pieces[:-1])
    assert b'"sha256":"' not in pieces[-1]


def test_without_the_dictionary_the_same_record_is_far_bigger(product: Record) -> None:
    alone = zlib.compress(record_codec.envelope(product), 6)
    assert len(encode(product)) * 2 < len(alone)


# -- the format --------------------------------------------------------------------------------


def test_the_dictionary_is_frozen() -> None:
    # Blobs written with format 1 need exactly this dictionary to be read again: a new
    # dictionary must come with a new format byte, never in place of this one.
    assert hashlib.sha256(DICTIONARY_1).hexdigest() == (
        "7a74878fded3557c5e604e991931ff7e4eb85a1418432fc2204dd35237c63ab5"
    )
    assert len(DICTIONARY_1) < 8192


def _golden_record() -> Record:
    """A small signed record, the same every run (Ed25519 signatures are deterministic)."""
    values = [_value(1, "URL", "https://example.test/一"), _value(2000, "name", "衣柜")]
    payload = {"iss": "furniture", "sub": "88.168.1/Gold-1", "iat": 7, "prefix": "88.168"}
    payload["digests"] = digests(values)
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    signature = _value(SIGNATURE_INDEX, "HS_SIGNATURE", jws.sign(payload, key, "k1"))
    return Record("88.168.1/Gold-1", [*values, signature])


def test_a_blob_written_by_format_1_still_reads() -> None:
    record, blob = _golden_record(), bytes.fromhex(GOLDEN_BLOB)
    assert decode(blob) == record
    # The text deflated stays the same (the deflate bytes may differ between zlib builds).
    inflate = zlib.decompressobj(-15, zdict=DICTIONARY_1)
    assert inflate.decompress(blob[1:]) + inflate.flush() == record_codec.envelope(record)


def test_plain_json_of_the_old_format_reads() -> None:
    record = Record("88.168.1/Old-1", [_value(2000, "name", "旧格式 old format")])
    assert decode(record.dumps().encode()) == record
    assert decode(record.dumps()) == record
    escaped = json.dumps({"h": record.handle, "v": record.values}, ensure_ascii=True)
    assert decode(escaped.encode()) == record


@pytest.mark.parametrize("blob", [b"", b"\x00abc", b"\x02abc", b"[1]"])
def test_an_unknown_format_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError, match="format"):
        decode(blob)


def test_a_corrupt_body_is_refused() -> None:
    with pytest.raises(ValueError):
        decode(bytes((FORMAT_DEFLATE_1,)) + b"\xff\xfe not deflate")


def test_a_lone_surrogate_survives() -> None:
    _assert_round_trip(Record("88.168.1/S", [_value(2000, "name", "broken \ud800 text")]))


# -- signatures kept whole or in part ------------------------------------------------------------


def test_a_digest_that_no_longer_matches_its_value_is_kept() -> None:
    values = [_value(1, "URL", "https://a.test"), _value(2000, "name", "before")]
    record = _signed("88.168.1/T", values)
    assert [v["index"] for v in record.values] == [1, 400, 2000]
    record.values[2] = _value(2000, "name", "changed behind the node's back")
    blob = _assert_round_trip(record)
    _, [(_, indexes, *_)], _ = record_codec._split(record.values)
    assert indexes == [1]
    assert _token(decode(blob)) == _token(record)


@pytest.mark.parametrize(
    "token",
    [
        "not a jws",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJFZERTQSJ9.eyJ4IjogMX0.sig",  # payload {"x": 1}: not compact JSON
        "eyJhbGciOiJFZERTQSJ9.WzFd.sig",  # payload [1]: not an object
        "eyJhbGciOiJFZERTQSJ9.e30=.sig",  # padded base64
        "..",
    ],
)
def test_a_signature_that_cannot_be_rebuilt_exactly_is_kept_whole(token: str) -> None:
    record = Record("88.168.1/T", [_value(1, "URL", "u"), _value(400, "HS_SIGNATURE", token)])
    _assert_round_trip(record)


@pytest.mark.parametrize(
    "entries",
    [
        [{"index": 1, "sha256": "", "type": "URL"}],
        [{"index": 1, "sha256": "x" * 43, "type": "URL"}],
        [{"index": 9, "sha256": "y" * 43, "type": "URL"}],
        [{"index": 1, "type": "URL"}],
        "not a list",
    ],
)
def test_odd_digest_entries_stay_in_the_payload(entries: Any) -> None:
    values = [_value(1, "URL", "https://a.test")]
    record = Record("88.168.1/T", [*values, _signature(values, "88.168.1/T", digests=entries)])
    _assert_round_trip(record)
    _, [(_, indexes, *_)], _ = record_codec._split(record.values)
    assert indexes == []


def test_a_payload_with_a_nul_byte_keeps_the_signature_whole() -> None:
    payload = jws.b64url(b'{"x":"\x00"}')  # a raw NUL byte: not JSON, but base64url
    token = f"{jws.b64url(b'{}')}.{payload}.sig"
    record = Record("88.168.1/T", [_value(400, "HS_SIGNATURE", token)])
    assert b"\x00" in jws.b64url_decode(token.split(".")[1])
    _assert_round_trip(record)
    assert record_codec._split(record.values)[1] == []


def test_duplicate_indexes_and_odd_values_round_trip() -> None:
    values: list[Any] = [
        _value(1, "URL", "a"),
        _value(1, "URL", "b"),
        {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"index": 300}}},
        {"index": "7", "type": "X", "data": None},
        {"type": "no index"},
    ]
    record = Record("88.168.1/D", [*values, _signature(values[:3], "88.168.1/D")])
    _assert_round_trip(record)


@pytest.mark.parametrize(
    "data",
    [{2: "a", 10: "b"}, {"n": 2**70}, {"n": float("nan")}, {"n": float("inf")}],
    ids=["int keys", "huge int", "nan", "infinity"],
)
def test_a_value_that_json_changes_keeps_its_digest(data: Any) -> None:
    # Stored and read back, these values change (int keys become text, which sorts
    # differently; the others come back as floats or null): their digests cannot be
    # computed again from what is read, so they stay in the payload, and the JWS is exact.
    odd = {"index": 5, "type": "X", "data": {"format": "map", "value": data}}
    plain = _value(1, "URL", "https://a.test")
    record = Record("88.168.1/K", [plain, odd, _signature([plain, odd], "88.168.1/K")])
    assert _token(decode(encode(record))) == _token(record)
    _, [(_, indexes, *_)], _ = record_codec._split(record.values)
    assert indexes == [1]


def test_signatures_at_several_indexes_round_trip() -> None:
    values = [_value(1, "URL", "https://a.test"), _value(2000, "name", "三")]
    first, second = _signature(values, "0.NA/88"), _signature(values, "0.NA/88", iat=9)
    second["index"] = 401
    _assert_round_trip(Record("0.NA/88", [*values, first, second]))


# -- any record ----------------------------------------------------------------------------------

_text = st.one_of(st.text(max_size=30), st.sampled_from(NON_ASCII))
# Integers within 64 bits: idcore.jsontext (orjson) reads longer ones back as floats, in
# the old plain JSON as much as here.
_json: Any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_data = st.one_of(
    st.fixed_dictionaries({"format": st.sampled_from(["string", "admin"]), "value": _text}),
    _json,
)
_values = st.lists(
    st.fixed_dictionaries(
        {
            "index": st.integers(0, 5000),
            "type": st.one_of(st.sampled_from(["URL", "name", "TRACE.INPUT"]), _text),
            "data": _data,
        },
        optional={"ttl": st.integers(0, 86400), "timestamp": _text},
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    handle=st.one_of(_text, st.sampled_from(["88.168.1/衣柜-1", "88.168.1/Wardrobe-Ä"])),
    values=_values,
    sign=st.booleans(),
    tamper=st.integers(-1, 8),
)
def test_any_record_round_trips(
    handle: str, values: list[dict[str, Any]], sign: bool, tamper: int
) -> None:
    if sign:
        signature = _signature(values, handle)
        if 0 <= tamper < len(values):
            values[tamper] = {**values[tamper], "data": "changed after signing"}
        values = [*values, signature]
    record = Record(handle, values)
    blob = _assert_round_trip(record)
    assert blob[0] == FORMAT_DEFLATE_1
    if sign:
        assert _token(decode(blob)) == _token(record)


GOLDEN_BLOB = (
    "01ab461d2074cfcf49d135a4ceb060b195be7e6a05b0e4cf49d52b0116a1fa4f763410a81dcc740d0c750d8c"
    "420c8cad801584812915069020633194d84bcbf13b2c16a35487203f03051c5dcddd72527c7d3d3c0dc3758d"
    "2afc4d53430d8ac282bdb2b2e283dd830b2a424b4bdd8cc3b243d33d3c7493cab3bd23535d2babca8b4af2f3"
    "52d37274b3235d0c4c0d2233fd32ca9dcc0da2aa829dcb0a9da31c1df1d47bd9c0761825751fa1ba09969ecd"
    "c94ac6d0545a0b00"
)
"""_golden_record() as format 1 wrote it: never to be changed, it is what old stores hold."""
