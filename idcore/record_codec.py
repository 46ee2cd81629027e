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
digests are 32 random bytes each, too many to keep a record within 1 KiB. A digest is a
pure function of the text it hashes, so a process remembers the last few thousand
(MEMO_SIZE): records of one product line share most of their values.

Why a preset dictionary: deflate finds repetitions only in what it has already seen, and
a single record is short, so alone it compresses badly (each key name, type and template
text is paid for once in full). The dictionary is text deflate has "already seen":
record shapes and the demo templates' item names and texts, so a record like them costs
little more than what is its own (handle, serial, times, signature). It is a constant in
this module, never learnt from stored data: a blob must decode the same way forever.
Changing it means a new format byte with a new dictionary, keeping the old ones for
reading.

The answer index (written since; a blob without one still reads, see below). A plain
resolve answers with the record's values as JSON text; rebuilding that from the record
costs a parse, a SHA-256 per cut digest with the Python around it, and a JSON encoding.
So, where it can, the encoder adds what builds that text without decoding the record:

- a first key ``"f"`` in the JSON: ``[public, hole, ...]``: 1 if every value may be read
  anonymously (0 if not), and for each unpacked JWS where its token goes back into the
  values' JSON text (which holds ``""`` there), counted from the start of that text;
- after the JWS texts, each after a NUL byte, the canonical text each cut digest
  hashes (UTF-8 rather than ASCII escapes where that reads back exactly: 190 bytes
  deflated for a demo product instead of 340, so its blob, 490 bytes, stays within
  Redis's 512-byte allocation class).

The values' text is then the JSON's slice between the first ``,"v":`` and the last
``,"s":[[`` (text in JSON quotes never holds either) with each token put back, each built
from its header, its pieces and one SHA-256 per cut digest of a kept text: no parse, no
per-value Python. Reading the whole record parses that same text. Format 1 readers that
predate the index ignore both (they read "h", "v" and "s", and only the JWS texts they
count), so blobs stay readable both ways. The encoder checks that what the index
rebuilds is byte for byte the values' JSON (orjson's, as answers are encoded) and
leaves the index out where it would not be (values orjson refuses, a token that occurs
twice).

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

import orjson

from idcore import jsontext
from idcore.store import Record
from idcore.values import value_is_public

FORMAT_PLAIN = 0x7B
"""First byte of an old-format blob: the "{" of plain JSON."""
FORMAT_DEFLATE_1 = 0x01
"""Format byte of raw deflate with DICTIONARY_1, of the text described above."""
LEVEL = 6
"""zlib level: with the dictionary a demo product takes 302 bytes at level 6 (24 µs), 313 at
level 3 (14 µs; just over Redis's 320-byte allocation class, 30 bytes more per identifier),
494 at level 1 (16 µs: its fast matcher misses most of the dictionary). With the answer
index: 491 bytes at level 6, 547 at 5 and 566 at 3 (Redis's 640-byte class), 799 at 1."""

_SIGNATURE_TYPE = "HS_SIGNATURE"
_DIGEST = re.compile(rb'"index":(\d{1,18}),"sha256":"([A-Za-z0-9_-]{43})"')
_NUL = b"\x00"
"""Separates the JSON and the JWS texts after it (JSON text never holds a NUL byte)."""
_INDEXED = b'{"f":['
"""How a text with the answer index starts (one without starts with {"h":)."""
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


def _canonical(value: Any) -> str | None:
    """The canonical JSON of a value's `{data, index, type}`, which its digest hashes; or None.

    A frozen copy of how idcore.signing spells it (string values spelled out directly, as
    fast), so that blobs decode the same whatever happens to that module later.
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
        return (
            f'{{"data":{{"format":{_ascii(data["format"])},"value":{_ascii(data["value"])}}},'
            f'"index":{index},"type":{_ascii(vtype)}}}'
        )
    if "data" in value and _round_trips(data) and _round_trips(vtype):
        try:
            return _CANONICAL.encode({"index": index, "type": vtype, "data": data})
        except (TypeError, ValueError):
            return None
    return None


def _digest(canonical: bytes) -> bytes:
    """The base64url SHA-256 of a canonical text."""
    # A SHA-256 is 32 bytes: 43 base64url characters and one "=" of padding.
    return _b2a(_sha256(canonical).digest(), newline=False).translate(_TO_URLSAFE)[:43]


def value_digest(value: Any) -> bytes | None:
    """The base64url SHA-256 of a value's canonical `{data, index, type}`; None if it has none."""
    text = _canonical(value)
    return None if text is None else _digest_of(text.encode("ascii"))


MEMO_SIZE = 4096
"""Most digests (and kept texts) a process remembers, about 1 MB; then it starts afresh."""
_DIGESTS: dict[bytes, bytes] = {}
_KEPT: dict[bytes, bytes] = {}


def _remember(memo: dict[bytes, bytes], key: bytes, value: bytes) -> bytes:
    """Remember `value` for `key`, within MEMO_SIZE entries."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()  # a working set larger than that is computed again, never wrong
    memo[key] = value
    return value


def _digest_of(text: bytes) -> bytes:
    """The digest of a canonical text or of a kept one (the same digest), remembered."""
    # A pure function of the text, so remembering it changes nothing but time: records of
    # one product line share most values (template, items, inputs), and so their digests.
    digest = _DIGESTS.get(text)
    return digest if digest is not None else _remember(_DIGESTS, text, _digest(_to_ascii(text)))


def _digests(kept: list[bytes]) -> list[bytes]:
    """The base64url SHA-256 of each kept text's canonical form (remembered ones looked up)."""
    found = [_DIGESTS.get(text) for text in kept]
    if None not in found:
        return cast("list[bytes]", found)
    missing = [text for text, digest in zip(kept, found, strict=True) if digest is None]
    # A digest and a zero byte are 33 bytes, 44 base64 characters: the digest's own 43
    # (the last one's low bits are the zero byte's), so one encoding serves them all.
    raw = _NUL.join(
        [_sha256(text if text.isascii() else _to_ascii(text)).digest() for text in missing]
    )
    encoded = _b2a(raw + _NUL, newline=False).translate(_TO_URLSAFE)
    if len(_DIGESTS) + len(missing) > MEMO_SIZE:
        _DIGESTS.clear()  # as _remember does
    at = 0
    for position, digest in enumerate(found):
        if digest is None:
            digest = found[position] = encoded[at : at + 43]
            if len(_DIGESTS) < MEMO_SIZE:
                _DIGESTS[kept[position]] = digest
            at += 44
    return cast("list[bytes]", found)


def _to_ascii(kept: bytes) -> bytes:
    """The canonical text a blob keeps as `kept`: its non-ASCII characters as JSON escapes."""
    if kept.isascii():
        return kept
    # backslashreplace spells U+0100 .. U+FFFF as JSON does (\u4e09) and U+0080 .. U+00FF
    # nearly so (\xd7 for \u00d7). Where this gives anything else (characters beyond
    # U+FFFF, a backslash and an "x" of the text's own), the encoder kept the escaped text.
    escaped = kept.decode("utf-8").encode("ascii", "backslashreplace")
    return escaped.replace(b"\\x", b"\\u00") if b"\\x" in escaped else escaped


def _kept(canonical: bytes) -> bytes:
    """What a blob keeps of a cut digest's canonical text: UTF-8 where _to_ascii restores it."""
    if b"\\u" not in canonical:
        return canonical  # nothing escaped: both forms are the same text
    # Escaped Chinese costs 6 bytes a character, which deflate cannot match with the
    # values' own UTF-8 text: half the size of the kept texts of a demo product. Escapes
    # other than \\uXXXX come undone too (a quote, a backslash): then the check fails.
    try:
        raw = canonical.decode("unicode_escape").encode("utf-8")
    except UnicodeError:  # a surrogate pair comes back as two halves, which UTF-8 refuses
        return canonical
    return raw if _to_ascii(raw) == canonical else canonical


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


def _split(values: list[Any]) -> tuple[list[Any], list[list[Any]], dict[int, bytes]]:
    """Values with each JWS emptied, the JWS taken apart, the text kept per cut digest."""
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
        return values, [], {}
    by_index = _by_index(values, {f[0] for f in found})
    digests: dict[int, bytes | None] = {}
    canonical: dict[int, bytes] = {}
    kept: dict[int, bytes] = {}
    out = list(values)
    signatures: list[list[Any]] = []
    for position, header, payload, signature in found:
        pieces: list[bytes] = []
        indexes: list[int] = []
        done = 0
        for match in _DIGEST.finditer(payload):
            index = int(match.group(1))
            if index not in digests:
                text = _canonical(by_index.get(index))
                if text is None:
                    digests[index] = None
                else:
                    escaped = canonical[index] = text.encode("ascii")
                    digests[index] = _digest_of(escaped)
            if digests[index] == match.group(2):
                pieces.append(payload[done : match.start(2)])
                indexes.append(index)
                done = match.end(2)
                if index not in kept:
                    escaped = canonical[index]
                    if b"\\u" in escaped:  # else _kept would keep it as it is
                        escaped = _KEPT.get(escaped) or _remember(_KEPT, escaped, _kept(escaped))
                    kept[index] = escaped
        pieces.append(payload[done:])
        value = values[position]
        out[position] = {**value, "data": {**value["data"], "value": ""}}
        signatures.append([position, indexes, signature, header, pieces])
    return out, signatures, kept


def _join_signatures(values: list[Any], signatures: list[list[Any]]) -> None:
    """Put each JWS back into its value, computing the digests that were cut out."""
    by_index = _by_index(values, {s[0] for s in signatures})
    for position, indexes, signature, header, pieces in signatures:
        digests = [value_digest(by_index.get(index)) for index in indexes]
        if None in digests or len(pieces) != len(digests) + 1:
            raise ValueError(f"record blob: the signature at {position} cannot be rebuilt")
        signed = _signed_part(header, pieces, cast("list[bytes]", digests)).decode("ascii")
        values[position]["data"]["value"] = f"{signed}.{signature}"


def _signed_part(header: bytes, pieces: list[bytes], digests: list[bytes]) -> bytes:
    """A JWS header and payload (base64url, a dot between): digests put between the pieces."""
    payload: list[bytes] = [pieces[0]] * (2 * len(pieces) - 1)
    payload[0::2] = pieces
    payload[1::2] = digests
    return _b64url(header) + b"." + _b64url(b"".join(payload))


# -- the answer index ----------------------------------------------------------------------------


def _all_public(values: list[Any]) -> bool:
    """True if an anonymous reader may see every value (a malformed one counts as not)."""
    try:
        return all(value_is_public(v) for v in values)
    except (AttributeError, IndexError, KeyError, TypeError):
        return False


def _answer_index(record: Record, core: bytes, signatures: list[list[Any]]) -> bytes | None:
    """The JSON text `core` with the answer index in front; None where it would not be exact."""
    try:
        answer = orjson.dumps(record.values)  # as idcore.web encodes a resolve's answer
        start = len(orjson.dumps(record.handle)) + 10  # past {"h":<handle>,"v":
        end = len(core) - 1  # before the closing brace, or before ,"s":[[...]]
        if signatures:
            end -= len(orjson.dumps([s[:3] for s in signatures])) + 5
    except TypeError:  # orjson.JSONEncodeError: what it refuses is answered the general way
        return None
    emptied = core[start:end]
    holes: list[int] = []
    rebuilt: list[bytes] = []
    done = shift = 0
    for position, *_ in signatures:
        token = orjson.dumps(record.values[position]["data"]["value"])
        # Its first occurrence; were that another value's text (the same token twice),
        # the rebuilt text below would not be the answer, and there is no index.
        at = answer.find(token)
        hole = at + 1 - shift  # between the quotes of the emptied value
        if at < 0 or hole < done:
            return None
        rebuilt += [emptied[done:hole], token[1:-1]]
        holes.append(hole)
        done, shift = hole, shift + len(token) - 2
    rebuilt.append(emptied[done:])
    if b"".join(rebuilt) != answer:
        return None
    index = orjson.dumps([int(_all_public(record.values)), *holes])
    head = b'{"f":' + index + b"," + core[1:]
    base = len(index) + 5
    if _bounds(head, base, bool(holes)) != (base + start, base + end):
        return None
    return head


def _bounds(head: bytes, base: int, signed: bool) -> tuple[int, int]:
    """Where the values' JSON text lies in a head whose own JSON starts at `base`."""
    # Found, not stored (10 bytes a blob): text within JSON quotes never holds an unescaped
    # quote, so the first ,"v": ends the handle, and "s" (the last key, a list of lists)
    # starts at the last ,"s":[[. The encoder checks both against what it wrote.
    start = head.find(b',"v":', base) + 5
    return start, head.rfind(b',"s":[[', start) if signed else len(head) - 1


def _indexed(text: bytes) -> tuple[list[bytes], list[int], int] | None:
    """A text's NUL-separated parts, its answer index and where its head's own JSON starts."""
    if not text.startswith(_INDEXED):
        return None
    parts = text.split(_NUL)
    base = parts[0].index(b"]") + 1  # the index holds integers only: its first "]" ends it
    return parts, orjson.loads(parts[0][5:base]), base


def _handle_text(parts: list[bytes], index: list[int], base: int) -> bytes:
    """The handle's JSON text, between {"h": and ,"v":."""
    return parts[0][base + 5 : _bounds(parts[0], base, len(index) > 1)[0] - 5]


def _values_text(parts: list[bytes], index: list[int], base: int) -> bytes:
    """The values' JSON text, each JWS put back: a SHA-256 per kept text not remembered."""
    holes = index[1:]
    head = parts[0]
    start, end = _bounds(head, base, bool(holes))
    values = head[start:end]
    if not holes:
        return values
    signatures = orjson.loads(head[end + 5 : -1])  # the "s" list after the values
    at = 1
    kept = parts[at + sum(len(s[1]) + 2 for s in signatures) :]
    digests = _digests(kept)
    if len(digests) != sum(len(s[1]) for s in signatures) or len(holes) != len(signatures):
        raise ValueError("record blob: the answer index does not match its texts")
    out: list[bytes] = []
    done = used = 0
    for (_, indexes, signature), hole in zip(signatures, holes, strict=True):
        cuts = len(indexes)
        signed = _signed_part(parts[at], parts[at + 1 : at + cuts + 2], digests[used : used + cuts])
        # The signature as the JSON text spells it (the encoder checked the whole text).
        out += [values[done:hole], signed, b".", orjson.dumps(signature)[1:-1]]
        at, done, used = at + cuts + 2, hole, used + cuts
    out.append(values[done:])
    return b"".join(out)


# -- blobs ---------------------------------------------------------------------------------------


def _text(record: Record, indexed: bool) -> bytes:
    """The text format 1 deflates, with the answer index where asked and possible."""
    values, signatures, kept = _split(record.values)
    head: dict[str, Any] = {"h": record.handle, "v": values}
    if signatures:
        head["s"] = [signature[:3] for signature in signatures]
    try:
        core = orjson.dumps(head)  # jsontext.dumps's first choice: the same bytes
    except TypeError:
        core, indexed = jsontext.dumps(head), False
    texts = [core]
    for *_, header, pieces in signatures:
        texts += [header, *pieces]
    answer = _answer_index(record, core, signatures) if indexed else None
    if answer is not None:
        texts[0] = answer
        texts += [kept[index] for _, indexes, *_ in signatures for index in indexes]
    return _NUL.join(texts)


def envelope(record: Record) -> bytes:
    """The bytes format 1 deflates, without the answer index: the JSON, then the JWS texts."""
    return _text(record, indexed=False)


def encode(record: Record) -> bytes:
    """The compact blob of a record (format 1, with the answer index where it can have one)."""
    deflate = _DEFLATE_1.copy()  # a copy of a primed compressor: the dictionary is loaded once
    return bytes((FORMAT_DEFLATE_1,)) + deflate.compress(_text(record, True)) + deflate.flush()


def _inflate(blob: bytes) -> bytes:
    """The text a format 1 blob deflates."""
    if blob[:1] != bytes((FORMAT_DEFLATE_1,)):
        raise ValueError(f"record blob: unknown format byte {blob[:1]!r}")
    inflate = _INFLATE_1.copy()
    try:
        return inflate.decompress(memoryview(blob)[1:]) + inflate.flush()
    except zlib.error as exc:
        raise ValueError(f"record blob: corrupt deflate data ({exc})") from None


def decode(blob: bytes | str) -> Record:
    """The record a blob holds, in the current format or the old plain JSON."""
    if isinstance(blob, str) or blob[:1] == bytes((FORMAT_PLAIN,)):
        return Record.loads(blob)
    text = _inflate(blob)
    indexed = _indexed(text)
    if indexed is not None:
        handle, values = _handle_text(*indexed), _values_text(*indexed)
        return Record(handle=jsontext.loads(handle), values=jsontext.loads(values))
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


def public_values_text(blob: bytes | str) -> bytes | None:
    """The values' JSON text a plain resolve answers with, if every value is public; else None.

    From the answer index without decoding the record; a blob from before it is decoded.
    """
    if not isinstance(blob, str) and blob[:1] == bytes((FORMAT_DEFLATE_1,)):
        indexed = _indexed(_inflate(blob))
        if indexed is not None:
            return _values_text(*indexed) if indexed[1][0] == 1 else None
    record = decode(blob)
    if not _all_public(record.values):
        return None
    try:
        return orjson.dumps(record.values)
    except TypeError:  # answered the general way (jsontext's stdlib spelling)
        return None


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
