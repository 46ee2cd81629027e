"""Compact binary form of a stored record: signatures unpacked, then deflated with a dictionary.

A blob is one format byte and a body. Format 1, the one written now::

    0x01  raw deflate (no zlib header or checksum) of the text below, with the preset
          dictionary DICTIONARY_1

The text is the record's JSON ``{"h": handle, "v": values}`` with each HS_SIGNATURE JWS
taken apart: its value's ``data.value`` holds "" and a list ``"s"`` holds ``[position,
indexes of the digests cut out, signature (base64url)]`` for it; after the JSON come,
each after a NUL byte, the JWS header and the pieces of its payload as the bytes they
encode (outside the JSON their quotes need no escaping, which would slow parsing down).
Two things shrink the JWS, half of a signed record, there:

- header and payload are plain JSON text, not base64url, which hides every repetition
  from deflate and spends 4 characters on 3 bytes;
- the payload's per-value SHA-256 digests (``"index":N,"sha256":"<43 characters>"``, 24
  of them in a demo product, random to any compressor) are cut out wherever they equal
  the digest of the record's own value at index N: the payload is kept as the pieces
  between the cuts, with the list of those N, and the decoder computes each digest
  again from the value at its index. A digest that does not match its value stays in
  the text.

Decoding gives back exactly the stored JWS text (a JWS whose parts do not re-encode to
the same base64url, or hold a NUL, is kept whole), so signatures keep verifying. The
price is a SHA-256 per signed value on every read, tens of microseconds a record: the
digests are 32 random bytes each, too many to keep a record within 1 KiB.

Why a preset dictionary: deflate finds repetitions only in what it has already seen, and
a single record is short, so alone it compresses badly (each key name, type and template
text is paid for once in full). The dictionary is text deflate has "already seen":
record shapes and the demo templates' item names and texts, so a record like them costs
little more than what is its own (handle, serial, times, signature). It is a constant in
this module, never learnt from stored data: a blob must decode the same way forever.
Changing it means a new format byte with a new dictionary, keeping the old ones for
reading.

Blobs that start with ``{`` are the plain JSON (Record.dumps) of the old format; they
are read as such.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import re
import zlib
from typing import Any, cast

from idcore import jsontext
from idcore.store import Record

FORMAT_PLAIN = 0x7B
"""First byte of an old-format blob: the "{" of plain JSON."""
FORMAT_DEFLATE_1 = 0x01
"""Format byte of raw deflate with DICTIONARY_1, of the text described above."""
LEVEL = 6
"""zlib level: with the dictionary a demo product takes 302 bytes at level 6 (24 µs), 313 at
level 3 (14 µs; just over Redis's 320-byte allocation class, 30 bytes more per identifier),
494 at level 1 (16 µs: its fast matcher misses most of the dictionary)."""

_SIGNATURE_TYPE = "HS_SIGNATURE"
_DIGEST = re.compile(rb'"index":(\d{1,18}),"sha256":"([A-Za-z0-9_-]{43})"')
_NUL = b"\x00"
"""Separates the JSON and the JWS texts after it (JSON text never holds a NUL byte)."""
_ascii = json.encoder.encode_basestring_ascii
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_sha256 = hashlib.sha256
_b2a = binascii.b2a_base64


# -- signatures ----------------------------------------------------------------------------------


def _b64url(raw: bytes) -> bytes:
    """Base64url without padding."""
    return _b2a(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def _unb64url(text: str) -> bytes | None:
    """The bytes a base64url segment encodes, if encoding them again gives the segment."""
    try:
        segment = text.encode("ascii")
        raw = binascii.a2b_base64(segment.translate(_FROM_URLSAFE) + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64url(raw) == segment else None


def _round_trips(obj: Any) -> bool:
    """True if storing and reading `obj` keeps its canonical JSON (so its digest).

    Not so for keys other than str (they come back as text, which sorts differently),
    NaN and infinities (stored as null) or integers beyond 64 bits (orjson reads them
    back as floats).
    """
    if isinstance(obj, dict):
        return all(type(k) is str and _round_trips(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return all(_round_trips(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return not isinstance(obj, int) or -(2**63) <= obj < 2**64


def value_digest(value: Any) -> bytes | None:
    """The base64url SHA-256 of a value's canonical `{data, index, type}`; None if it has none.

    A frozen copy of how idcore.signing computes it (string values spelled out directly,
    as fast), so that blobs decode the same whatever happens to that module later.
    """
    if type(value) is not dict:
        return None
    index, vtype, data = value.get("index"), value.get("type"), value.get("data")
    if (
        type(index) is int
        and type(vtype) is str
        and type(data) is dict
        and len(data) == 2
        and type(data.get("format")) is str
        and type(data.get("value")) is str
    ):
        text = (
            f'{{"data":{{"format":{_ascii(data["format"])},"value":{_ascii(data["value"])}}},'
            f'"index":{index},"type":{_ascii(vtype)}}}'
        )
    elif "data" in value and _round_trips(data) and _round_trips(vtype):
        try:
            text = _CANONICAL.encode({"index": index, "type": vtype, "data": data})
        except (TypeError, ValueError):
            return None
    else:
        return None
    # A SHA-256 is 32 bytes: 43 base64url characters and one "=" of padding.
    digest = _sha256(text.encode("ascii")).digest()
    return _b2a(digest, newline=False).translate(_TO_URLSAFE)[:43]


def _by_index(values: list[Any], skip: set[int]) -> dict[int, Any]:
    """Values by (int) index, leaving out positions in `skip` and any index that occurs twice."""
    seen: dict[int, Any] = {}
    twice: set[int] = set()
    for position, value in enumerate(values):
        index = value.get("index") if type(value) is dict else None
        if position in skip or type(index) is not int:
            continue
        if index in seen:
            twice.add(index)
        seen[index] = value
    for index in twice:
        del seen[index]
    return seen


def _split_signatures(values: list[Any]) -> tuple[list[Any], list[list[Any]]]:
    """The values with each JWS emptied out, and each JWS taken apart (see the module doc)."""
    found: list[tuple[int, bytes, bytes, str]] = []
    for position, value in enumerate(values):
        if type(value) is not dict or value.get("type") != _SIGNATURE_TYPE:
            continue
        data = value.get("data")
        token = data.get("value") if type(data) is dict else None
        parts = token.split(".") if type(token) is str else []
        if len(parts) != 3:
            continue
        header, payload = _unb64url(parts[0]), _unb64url(parts[1])
        if header is None or payload is None or _NUL in header or _NUL in payload:
            continue  # not a JWS this format can rebuild exactly: stored as it is
        found.append((position, header, payload, parts[2]))
    if not found:
        return values, []
    by_index = _by_index(values, {f[0] for f in found})
    digests: dict[int, bytes | None] = {}
    out = list(values)
    signatures: list[list[Any]] = []
    for position, header, payload, signature in found:
        pieces: list[bytes] = []
        indexes: list[int] = []
        done = 0
        for match in _DIGEST.finditer(payload):
            index = int(match.group(1))
            if index not in digests:
                digests[index] = value_digest(by_index.get(index))
            if digests[index] == match.group(2):
                pieces.append(payload[done : match.start(2)])
                indexes.append(index)
                done = match.end(2)
        pieces.append(payload[done:])
        value = values[position]
        out[position] = {**value, "data": {**value["data"], "value": ""}}
        signatures.append([position, indexes, signature, header, pieces])
    return out, signatures


def _join_signatures(values: list[Any], signatures: list[list[Any]]) -> None:
    """Put each JWS back into its value, computing the digests that were cut out."""
    by_index = _by_index(values, {s[0] for s in signatures})
    for position, indexes, signature, header, pieces in signatures:
        digests = [value_digest(by_index.get(index)) for index in indexes]
        if None in digests or len(pieces) != len(digests) + 1:
            raise ValueError(f"record blob: the signature at {position} cannot be rebuilt")
        payload: list[bytes] = [pieces[0]] * (2 * len(pieces) - 1)
        payload[0::2] = pieces
        payload[1::2] = cast("list[bytes]", digests)
        token = b".".join([_b64url(header), _b64url(b"".join(payload))]).decode("ascii")
        values[position]["data"]["value"] = f"{token}.{signature}"


# -- blobs ---------------------------------------------------------------------------------------


def envelope(record: Record) -> bytes:
    """The bytes format 1 deflates: the JSON, then each JWS header and payload piece."""
    values, signatures = _split_signatures(record.values)
    head: dict[str, Any] = {"h": record.handle, "v": values}
    if not signatures:
        return jsontext.dumps(head)
    head["s"] = [signature[:3] for signature in signatures]
    texts = [jsontext.dumps(head)]
    for *_, header, pieces in signatures:
        texts += [header, *pieces]
    return _NUL.join(texts)


def encode(record: Record) -> bytes:
    """The compact blob of a record (format 1)."""
    deflate = _DEFLATE_1.copy()  # a copy of a primed compressor: the dictionary is loaded once
    return bytes((FORMAT_DEFLATE_1,)) + deflate.compress(envelope(record)) + deflate.flush()


def decode(blob: bytes | str) -> Record:
    """The record a blob holds, in the current format or the old plain JSON."""
    if isinstance(blob, str) or blob[:1] == bytes((FORMAT_PLAIN,)):
        return Record.loads(blob)
    if blob[:1] != bytes((FORMAT_DEFLATE_1,)):
        raise ValueError(f"record blob: unknown format byte {blob[:1]!r}")
    inflate = _INFLATE_1.copy()
    try:
        text = inflate.decompress(memoryview(blob)[1:]) + inflate.flush()
    except zlib.error as exc:
        raise ValueError(f"record blob: corrupt deflate data ({exc})") from None
    head, _, tail = text.partition(_NUL)
    raw = jsontext.loads(head)
    values = raw["v"]
    if "s" in raw:
        texts = tail.split(_NUL)
        signatures, at = [], 0
        for position, indexes, signature in raw["s"]:
            end = at + len(indexes) + 2  # the header, then one piece more than cuts
            signatures.append([position, indexes, signature, texts[at], texts[at + 1 : end]])
            at = end
        _join_signatures(values, signatures)
    return Record(handle=raw["h"], values=values)


# -- the dictionary ------------------------------------------------------------------------------

# What format 1 deflates for the demo's sample product (idcore.demo, seed 2024,
# 88.168.1/WARD-2024-000123) signed as the furniture node signs it, with a fixed iat and the
# key id and signature left blank: the value shapes, template items and texts and trace
# types of a product record, and the layout of a signature payload (5 KB). Generated once
# and frozen: a new dictionary needs a new format byte (see the top), never an edit here.
DICTIONARY_1 = (
    '{"h":"88.168.1/WARD-2024-000123","v":[{"index":1,"type":"URL","data":{"format":"string","v'
    'alue":"http://127.0.0.1:8000/t/88.168.1/WARD-2024-000123"},"ttl":86400,"timestamp":"2024-0'
    '5-15T04:41:00Z"},'
    '{"index":100,"type":"HS_ADMIN","data":{"format":"admin","value":{"handle":"88.168.1/ADMIN"'
    ',"index":300,"permissions":"111111111111"}},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"'
    "},"
    '{"index":400,"type":"HS_SIGNATURE","data":{"format":"string","value":""},"ttl":86400,"time'
    'stamp":"2024-05-15T04:41:00Z"},'
    '{"index":1001,"type":"IDIS.TEMPLATE","data":{"format":"string","value":"furniture.product@'
    '1"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2000,"type":"name","data":{"format":"string","value":"三门推拉衣柜（演示） / 3-do'
    'or sliding wardrobe (demo)"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2001,"type":"category","data":{"format":"string","value":"衣柜 wardrobe"},"ttl":8'
    '6400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2002,"type":"model","data":{"format":"string","value":"HM-YG-1860"},"ttl":86400,"'
    'timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2003,"type":"serial_no","data":{"format":"string","value":"WARD-2024-000123"},"tt'
    'l":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2004,"type":"dimensions","data":{"format":"string","value":"1800×600×2200"},"ttl"'
    ':86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2005,"type":"main_material","data":{"format":"string","value":"E0级刨花板、中密度'
    '纤维板 / E0 particleboard, MDF"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2006,"type":"finish","data":{"format":"string","value":"水性漆涂装 / waterborne l'
    'acquer"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2007,"type":"color","data":{"format":"string","value":"烟灰 / smoke grey"},"ttl":'
    '86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2008,"type":"manufacturer","data":{"format":"string","value":"重庆华木家具有限公'
    '司（演示） / Chongqing Huamu Furniture Co., Ltd. (demo)"},"ttl":86400,"timestamp":"2024-05'
    '-15T04:41:00Z"},'
    '{"index":2009,"type":"produced_at","data":{"format":"string","value":"2024-05-15"},"ttl":8'
    '6400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2010,"type":"standard","data":{"format":"string","value":"GB/T 3324-2017"},"ttl":'
    '86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":2011,"type":"warranty_years","data":{"format":"string","value":"5"},"ttl":86400,"'
    'timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3000,"type":"TRACE.BATCH","data":{"format":"string","value":"88.168.1/BATCH-2024-'
    '0512"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3001,"type":"TRACE.INPUT","data":{"format":"string","value":"88.169.1/BOARD-LOT-2'
    '024-0305"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3002,"type":"TRACE.INPUT","data":{"format":"string","value":"88.169.1/BOARD-LOT-2'
    '024-0312"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3003,"type":"TRACE.INPUT","data":{"format":"string","value":"88.170.1/HINGE-LOT-2'
    '024-0322"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3004,"type":"TRACE.INPUT","data":{"format":"string","value":"88.170.1/SLIDE-LOT-2'
    '024-0330"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3005,"type":"TRACE.INPUT","data":{"format":"string","value":"88.170.2/COAT-LOT-20'
    '24-0411"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3006,"type":"TRACE.INPUT","data":{"format":"string","value":"88.170.2/COAT-LOT-20'
    '24-0405"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3007,"type":"TRACE.INSPECTION","data":{"format":"string","value":"88.171.3/QC-1-W'
    'ARD-2024-000123"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"},'
    '{"index":3008,"type":"TRACE.MANUFACTURER","data":{"format":"string","value":"88.168.1/PROF'
    'ILE"},"ttl":86400,"timestamp":"2024-05-15T04:41:00Z"}],'
    '"s":[[2,[1,100,1001,2000,2001,2002,2003,2004,2005,2006,2007,2008,2009,2010,2011,3000,3001,'
    '3002,3003,3004,3005,3006,3007,3008],""]]}\x00'
    '{"alg":"EdDSA","kid":"\x00'
    '{"digests":[{"index":1,"sha256":"\x00'
    '","type":"URL"},'
    '{"index":100,"sha256":"\x00'
    '","type":"HS_ADMIN"},'
    '{"index":1001,"sha256":"\x00'
    '","type":"IDIS.TEMPLATE"},'
    '{"index":2000,"sha256":"\x00'
    '","type":"name"},'
    '{"index":2001,"sha256":"\x00'
    '","type":"category"},'
    '{"index":2002,"sha256":"\x00'
    '","type":"model"},'
    '{"index":2003,"sha256":"\x00'
    '","type":"serial_no"},'
    '{"index":2004,"sha256":"\x00'
    '","type":"dimensions"},'
    '{"index":2005,"sha256":"\x00'
    '","type":"main_material"},'
    '{"index":2006,"sha256":"\x00'
    '","type":"finish"},'
    '{"index":2007,"sha256":"\x00'
    '","type":"color"},'
    '{"index":2008,"sha256":"\x00'
    '","type":"manufacturer"},'
    '{"index":2009,"sha256":"\x00'
    '","type":"produced_at"},'
    '{"index":2010,"sha256":"\x00'
    '","type":"standard"},'
    '{"index":2011,"sha256":"\x00'
    '","type":"warranty_years"},'
    '{"index":3000,"sha256":"\x00'
    '","type":"TRACE.BATCH"},'
    '{"index":3001,"sha256":"\x00'
    '","type":"TRACE.INPUT"},'
    '{"index":3002,"sha256":"\x00'
    '","type":"TRACE.INPUT"},'
    '{"index":3003,"sha256":"\x00'
    '","type":"TRACE.INPUT"},'
    '{"index":3004,"sha256":"\x00'
    '","type":"TRACE.INPUT"},'
    '{"index":3005,"sha256":"\x00'
    '","type":"TRACE.INPUT"},'
    '{"index":3006,"sha256":"\x00'
    '","type":"TRACE.INPUT"},'
    '{"index":3007,"sha256":"\x00'
    '","type":"TRACE.INSPECTION"},'
    '{"index":3008,"sha256":"\x00'
    '","type":"TRACE.MANUFACTURER"}],"iat":1715748060,"iss":"furniture","prefix":"88.168","sub"'
    ':"88.168.1/WARD-2024-000123"}'
).encode()

_DEFLATE_1 = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_1)
_INFLATE_1 = zlib.decompressobj(-15, zdict=DICTIONARY_1)
