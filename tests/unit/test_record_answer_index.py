"""The answer index of record blobs (idcore/record_codec.py): plain resolves without decoding.

What `public_values_text` builds from a blob must be, byte for byte, what the general
path answers with (the record decoded, its public values encoded as idcore.web does),
and a blob with the index must read the same through the format 1 reader that predates
it (a node still running the previous version).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idcore import jsontext, record_codec
from idcore.record_codec import DICTIONARY_1, decode, encode, envelope, public_values_text
from idcore.records import public_values
from idcore.store import Record
from tests.unit.test_record_codec import (
    NON_ASCII,
    _signature,
    _signed,
    _token,
    _value,
    _values,
    product,  # noqa: F401  (the signed demo product fixture)
)

PRIVATE = {"permissions": "110010"}
"""Permissions without publicRead: such a value is left out of anonymous answers."""


def _general(record: Record) -> bytes | None:
    """The values text the general path answers a plain resolve with.

    None where the store leaves the answer to the general path: a value is not public,
    or orjson refuses the values (the general path then spells them with the stdlib).
    """
    values = public_values(record.values)
    if len(values) != len(record.values):
        return None
    try:
        orjson.dumps(values)
    except TypeError:
        return None
    body = jsontext.dumps({"responseCode": 1, "handle": "h", "values": values})
    head = b'{"responseCode":1,"handle":"h","values":'
    assert body.startswith(head) and body.endswith(b"}")
    return body[len(head) : -1]


def _text(blob: bytes) -> bytes:
    """The text a format 1 blob deflates."""
    inflate = zlib.decompressobj(-15, zdict=DICTIONARY_1)
    return inflate.decompress(blob[1:]) + inflate.flush()


def _read_as_before(blob: bytes) -> Record:
    """What the format 1 reader that predates the answer index makes of a blob."""
    head, _, tail = _text(blob).partition(b"\x00")
    raw = jsontext.loads(head)
    values = raw["v"]
    if "s" in raw:
        texts = tail.split(b"\x00")
        signatures, at = [], 0
        for position, indexes, signature in raw["s"]:
            end = at + len(indexes) + 2
            signatures.append([position, indexes, signature, texts[at], texts[at + 1 : end]])
            at = end
        record_codec._join_signatures(values, signatures)
    return Record(handle=raw["h"], values=values)


def _check(record: Record, indexed: bool = True) -> bytes:
    """Encode; every reader gives the record back and the answer text is the general one."""
    blob = encode(record)
    assert _text(blob).startswith(b'{"f":[') is indexed
    assert decode(blob) == record
    assert decode(blob).dumps() == record.dumps()
    assert _read_as_before(blob) == record
    assert public_values_text(blob) == _general(record)
    return blob


# -- the demo product ------------------------------------------------------------------------


def test_the_demo_product_answers_as_the_general_path(product: Record) -> None:  # noqa: F811
    blob = _check(product)
    assert public_values_text(blob) == orjson.dumps(product.values)
    index = json.loads(_text(blob).split(b"\x00")[0])["f"]
    assert index[0] == 1 and len(index) == 2, "public, one signature"


def test_the_index_keeps_a_demo_product_in_a_512_byte_allocation(product: Record) -> None:  # noqa: F811
    # Redis keeps a string of n bytes in n + 6 (header and NUL): 506 fills 512.
    d = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_1)
    without = 1 + len(d.compress(envelope(product)) + d.flush())
    assert without < 320 < len(encode(product)) <= 506, (without, len(encode(product)))


def test_chinese_is_kept_as_utf8_not_as_escapes(product: Record) -> None:  # noqa: F811
    kept = _text(encode(product)).split(b"\x00")[-24:]
    assert all(k.startswith(b'{"data":') for k in kept)
    assert any("衣柜".encode() in k for k in kept)
    assert not any(b"\\u" in k for k in kept)


# -- public or not ---------------------------------------------------------------------------


def test_a_record_with_a_private_value_has_no_answer_text() -> None:
    values = [_value(1, "URL", "https://a.test"), {**_value(300, "HS_SECKEY", "s"), **PRIVATE}]
    blob = _check(_signed("88.168.1/P", values))
    assert public_values_text(blob) is None
    assert json.loads(_text(blob).split(b"\x00")[0])["f"][0] == 0


@pytest.mark.parametrize(
    "values",
    [
        [],
        [_value(1, "URL", "u")],
        [{"index": 1, "type": "URL", "data": "plain", "permissions": "111111"}],
        [{"index": 1, "type": "X", "data": {"a": [1, 2.5, None, True]}}],
    ],
    ids=["empty", "one", "public perms", "nested data"],
)
def test_records_without_a_signature(values: list[dict[str, Any]]) -> None:
    blob = _check(Record("88.168.1/U", values))
    assert public_values_text(blob) == orjson.dumps(values)


def test_malformed_permissions_count_as_not_public() -> None:
    record = Record("88.168.1/M", [{"index": 1, "type": "URL", "data": "x", "permissions": 7}])
    blob = encode(record)
    assert decode(blob) == record
    assert public_values_text(blob) is None, "the general path decides (and fails) as before"


# -- where the index is left out ---------------------------------------------------------------


def test_values_orjson_refuses_have_no_index_and_no_answer_text() -> None:
    record = Record("88.168.1/K", [{"index": 5, "type": "X", "data": {"n": 2**70}}])
    blob = _check(record, indexed=False)
    assert public_values_text(blob) is None  # the general path spells it with the stdlib
    assert _general(record) is None


@pytest.mark.parametrize("before", [True, False], ids=["copy before", "copy after"])
def test_a_token_that_occurs_twice(before: bool) -> None:
    values = [_value(1, "URL", "https://a.test")]
    record = _signed("88.168.1/T", values)
    copy = _value(5 if before else 2000, "copy", _token(record))
    record.values.insert(1 if before else len(record.values), copy)
    # Its first occurrence is where the index would put it back: right only after it.
    blob = _check(record, indexed=not before)
    assert public_values_text(blob) == orjson.dumps(record.values)


def test_two_signatures_each_get_a_hole() -> None:
    values = [_value(1, "URL", "https://a.test"), _value(2000, "name", "三")]
    first, second = _signature(values, "0.NA/88"), _signature(values, "0.NA/88", iat=9)
    second["index"] = 401
    blob = _check(Record("0.NA/88", [*values, first, second]))
    assert len(json.loads(_text(blob).split(b"\x00")[0])["f"]) == 3


# -- kept texts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1800×600×2200",  # U+00D7: backslashreplace spells it \xd7, kept as UTF-8 anyway
        "🪵 beyond U+FFFF",  # a surrogate pair: the escaped text is kept
        "a \\x41 backslash × x",  # the text's own backslash and x next to a kept character
        'quotes " and \\ and \n and \x7f with 三',
        "\x7f only",
        "ÿ",
    ],
)
def test_any_text_gives_its_digest_back(text: str) -> None:
    value = _value(2000, "name", text)
    canonical = record_codec._canonical(value)
    assert canonical is not None
    kept = record_codec._kept(canonical.encode("ascii"))
    assert record_codec._to_ascii(kept) == canonical.encode("ascii")
    record = _signed("88.168.1/X", [value, _value(1, "URL", text)])
    _check(record)
    assert _token(decode(encode(record))) == _token(record)


def test_the_memo_changes_nothing_but_time(
    product: Record,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = encode(product)
    monkeypatch.setattr(record_codec, "MEMO_SIZE", 5)
    record_codec._DIGESTS.clear()
    cold = public_values_text(blob)
    assert len(record_codec._DIGESTS) <= 5, "bounded: it starts afresh when full"
    assert public_values_text(blob) == cold == orjson.dumps(product.values)
    assert decode(blob) == product


# -- any record --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    handle=st.one_of(st.text(max_size=20), st.sampled_from(["88.168.1/衣柜-1", *NON_ASCII])),
    values=_values,
    sign=st.booleans(),
    private=st.integers(-1, 8),
)
def test_any_record_answers_as_the_general_path(
    handle: str, values: list[dict[str, Any]], sign: bool, private: int
) -> None:
    if 0 <= private < len(values):
        values[private] = {**values[private], **PRIVATE}
    if sign:
        values = [*values, _signature(values, handle)]
    record = Record(handle, values)
    blob = encode(record)
    assert decode(blob) == record
    assert _read_as_before(blob) == record
    assert public_values_text(blob) == _general(record)
