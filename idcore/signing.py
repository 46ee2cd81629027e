"""Record signatures (HS_SIGNATURE at index 400) and HS_PUBKEY values: making and checking them.

A node signs each record when it is written (RecordService calls its `signer` on the
final record, after validation): the signature is a compact JWS (EdDSA, header
`{alg, kid}`) whose payload is

    {"iss": node name, "sub": handle, "iat": unix time, "prefix": the node's prefix,
     "digests": [{"index", "type", "sha256"[, "hidden": true]}, ...]}

with one digest per value other than the signatures themselves: the base64url SHA-256 of
the canonical JSON (idcore.jws.canonical) of the value's `{"index", "type", "data"}`.
Timestamps, TTLs and permissions are not covered: they say how a value is kept and
cached, not what the record says (a changed permission that hides a value still shows,
as a signed value that is missing). Values a reader cannot see (HS_SECKEY) are marked
`hidden` so that a reader knows their absence is expected.

The top-level node also counter-signs its own prefix record (`0.NA/88`, which carries
its HS_PUBKEY values) with each retired key, at 401, 402, ...: a client that pinned an
old key accepts the new one because a key it trusts vouches for it.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import operator
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idcore.errors import InvalidValue
from idcore.identifier import fold
from idcore.jws import JWSError, Token, b64url, canonical, parse, sign_canonical
from idcore.keys import KeyRing, SigningKey
from idcore.store import Record
from idcore.values import now_iso, value_is_public

SIGNATURE_TYPE = "HS_SIGNATURE"
SIGNATURE_INDEX = 400
PUBKEY_TYPE = "HS_PUBKEY"
PUBKEY_INDEX = 300
SIGNATURE_TTL = 86400

_ascii = json.encoder.encode_basestring_ascii
_sha256 = hashlib.sha256


def value_digest(value: dict[str, Any]) -> str:
    """base64url SHA-256 of the canonical JSON of a value's index, type and data.

    Short string values are remembered by their content (_DIGESTS): checking a trace's
    records recomputes each value's digest, and records repeat most of their values
    (template, materials, makers, trace inputs) from one record and one trace to the next.
    """
    index, vtype, data = value["index"], value["type"], value["data"]
    if type(index) is int and type(vtype) is str and type(data) is dict and len(data) == 2:
        fmt, inner = data.get("format"), data.get("value")
        if type(fmt) is str and type(inner) is str:
            return _string_digest(index, vtype, fmt, inner)
    return b64url(_sha256(digest_input(value)).digest())


def _string_digest(index: int, vtype: str, fmt: str, inner: str) -> str:
    """value_digest() of a value whose data is `{format, value}`, both strings (_DIGESTS)."""
    memo = (index, vtype, fmt, inner)
    digest = _DIGESTS.get(memo)
    if digest is None:
        digest = b64url(_sha256(_string_input(index, vtype, fmt, inner)).digest())
        if len(inner) <= _ENTRY_TEXT_MAX:
            _remember(_DIGESTS, memo, digest)
    return digest


def digest_input(value: dict[str, Any]) -> bytes:
    """The canonical JSON of `{"index", "type", "data"}` (idcore.jws.canonical).

    String and admin values (nearly all of them) are spelled out directly, in canonical
    key order, with the JSON encoder's own string escaping: a batch signs thousands per
    second.
    """
    index, vtype, data = value["index"], value["type"], value["data"]
    if type(index) is int and type(vtype) is str and type(data) is dict and len(data) == 2:
        fmt, inner = data.get("format"), data.get("value")
        if type(fmt) is str and type(inner) is str:
            return _string_input(index, vtype, fmt, inner)
        if fmt == "admin" and type(inner) is dict and len(inner) == 3:
            handle, ref, bits = inner.get("handle"), inner.get("index"), inner.get("permissions")
            if type(handle) is str and type(ref) is int and type(bits) is str:
                return _admin_input(index, vtype, handle, ref, bits)
    return canonical({"index": index, "type": vtype, "data": data})


def _admin_input(index: int, vtype: str, handle: str, ref: int, bits: str) -> bytes:
    """digest_input of an admin value `{handle, index: ref, permissions: bits}`."""
    text = (
        f'{{"data":{{"format":"admin","value":{{"handle":{_ascii(handle)},'
        f'"index":{ref},"permissions":{_ascii(bits)}}}}},"index":{index},'
        f'"type":{_ascii(vtype)}}}'
    )
    return text.encode("ascii")


def _string_input(index: int, vtype: str, fmt: str, inner: str) -> bytes:
    """digest_input of a value whose data is `{format, value}`, both strings."""
    text = (
        f'{{"data":{{"format":{_ascii(fmt)},"value":{_ascii(inner)}}},'
        f'"index":{index},"type":{_ascii(vtype)}}}'
    )
    return text.encode("ascii")


def digests(values: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One digest entry per value that is not a signature, by index."""
    return [_entry(v) for v in sorted(values, key=_index) if v.get("type") != SIGNATURE_TYPE]


def _entry(value: dict[str, Any]) -> dict[str, Any]:
    """The digests() entry of one value."""
    entry: dict[str, Any] = {
        "index": value["index"],
        "type": value["type"],
        "sha256": value_digest(value),
    }
    if not value_is_public(value):
        entry["hidden"] = True
    return entry


def payload_json(
    issuer: str, subject: str, iat: int, prefix: str, values: Sequence[dict[str, Any]]
) -> bytes:
    """canonical() of the signature payload `{iss, sub, iat, prefix, digests(values)}`.

    Spelled out directly in canonical key order when every part is of the usual kind
    (int indexes, str types and names), which is what a node signs thousands of times a
    second; anything else goes through canonical() itself. Both give the same bytes.
    """
    return _payload_json(issuer, subject, iat, prefix, sorted(values, key=_index))


def _payload_json(
    issuer: str, subject: str, iat: int, prefix: str, ordered: Sequence[dict[str, Any]]
) -> bytes:
    """payload_json for values sorted by index already."""
    entries = _digest_entries(ordered) if type(iat) is int else None
    if (
        entries is None
        or type(issuer) is not str
        or type(subject) is not str
        or type(prefix) is not str
    ):
        payload = {
            "iss": issuer,
            "sub": subject,
            "iat": iat,
            "prefix": prefix,
            "digests": digests(ordered),
        }
        return canonical(payload)
    return _payload_text(issuer, subject, iat, prefix, entries)


def _payload_text(issuer: str, subject: str, iat: int, prefix: str, entries: list[str]) -> bytes:
    """The payload in canonical JSON from its digest entries (all parts of the usual kinds)."""
    text = (
        f'{{"digests":[{",".join(entries)}],"iat":{iat},"iss":{_ascii(issuer)},'
        f'"prefix":{_ascii(prefix)},"sub":{_ascii(subject)}}}'
    )
    return text.encode("ascii")


_ENTRIES: dict[tuple[Any, ...], str] = {}
"""Digest entries of public string and admin values, by their content.

String values are keyed (index, type, format, value), admin values (index, type, "admin",
handle, admin index, permissions): keys of different lengths never meet. The records of
one batch repeat most of their values (template, category, model, maker, trace inputs,
the admin): each distinct one is hashed once. Only short values are kept, and the whole
memo is dropped when full, so it stays within a few megabytes.
"""
_ENTRIES_MAX = 4096
_ENTRY_TEXT_MAX = 128
_DIGESTS: dict[tuple[int, str, str, str], str] = {}
"""value_digest() of short string values, by (index, type, format, value); bounded as
_ENTRIES is (dropped whole when it holds _ENTRIES_MAX)."""


def string_entry(index: int, vtype: str, fmt: str, inner: str) -> str:
    """digest_entry() of a public value whose data is `{"format": fmt, "value": inner}`.

    `index` must be an int and the rest str (not subclasses): the caller has checked.
    """
    memo = (index, vtype, fmt, inner)
    entry = _ENTRIES.get(memo)
    if entry is None:
        digest = _string_digest(index, vtype, fmt, inner)
        entry = f'{{"index":{index},"sha256":"{digest}","type":{_ascii(vtype)}}}'
        if len(inner) <= _ENTRY_TEXT_MAX:
            _remember(_ENTRIES, memo, entry)
    return entry


def admin_entry(index: int, vtype: str, handle: str, ref: int, bits: str) -> str:
    """digest_entry() of a public value whose data is admin `{handle, index: ref, permissions}`.

    Same exact kinds as string_entry: an int index and ref, str for the rest.
    """
    memo = (index, vtype, "admin", handle, ref, bits)
    entry = _ENTRIES.get(memo)
    if entry is None:
        text = _admin_input(index, vtype, handle, ref, bits)
        digest = b64url(_sha256(text).digest())
        entry = f'{{"index":{index},"sha256":"{digest}","type":{_ascii(vtype)}}}'
        if len(handle) <= _ENTRY_TEXT_MAX:
            _remember(_ENTRIES, memo, entry)
    return entry


def _remember(memos: dict[Any, str], memo: tuple[Any, ...], text: str) -> None:
    """Keep `text` under `memo`; a memo that is full is dropped whole first."""
    if len(memos) >= _ENTRIES_MAX:
        memos.clear()
    memos[memo] = text


def digest_entry(value: dict[str, Any]) -> str:
    """The canonical JSON of the digests() entry of one value (not an HS_SIGNATURE)."""
    entries = _digest_entries([value])
    if entries is not None and len(entries) == 1:
        return entries[0]
    return canonical(_entry(value)).decode("ascii")


def _digest_entries(ordered: Sequence[dict[str, Any]]) -> list[str] | None:
    """The canonical JSON of each digests() entry, or None if a value is not the usual kind."""
    out = []
    for value in ordered:
        vtype = value.get("type")
        if vtype == SIGNATURE_TYPE:
            continue
        index = value.get("index")
        if type(index) is not int or type(vtype) is not str:
            return None
        perms = value.get("permissions")
        data = value.get("data")
        if not perms and type(data) is dict and len(data) == 2:
            fmt, inner = data.get("format"), data.get("value")
            if type(fmt) is str and type(inner) is str:
                out.append(string_entry(index, vtype, fmt, inner))
                continue
            if fmt == "admin" and type(inner) is dict and len(inner) == 3:
                handle, ref = inner.get("handle"), inner.get("index")
                bits = inner.get("permissions")
                if type(handle) is str and type(ref) is int and type(bits) is str:
                    out.append(admin_entry(index, vtype, handle, ref, bits))
                    continue
        # The digest is base64url: no character of it needs escaping.
        entry = f'"index":{index},"sha256":"{value_digest(value)}","type":{_ascii(vtype)}}}'
        # value_is_public, inline: hidden when the publicRead bit is off.
        out.append('{"hidden":true,' + entry if perms and perms[2] != "1" else "{" + entry)
    return out


def strip_signatures(raw: Any) -> Any:
    """A client's values without HS_SIGNATURE ones: the node signs, clients cannot.

    Clients that read a record and write it back whole (pyhandle does) send the old
    signature along; it is dropped here instead of being refused.
    """
    if not isinstance(raw, list):
        return raw
    return [v for v in raw if not (isinstance(v, dict) and v.get("type") == SIGNATURE_TYPE)]


def signature_values(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The HS_SIGNATURE values of a record, index 400 first."""
    found = [v for v in values if v.get("type") == SIGNATURE_TYPE]
    return sorted(found, key=lambda v: int(v.get("index", 0)))


def parse_signature(value: dict[str, Any]) -> Token:
    """The JWS of an HS_SIGNATURE value; JWSError if it is not one."""
    data = value.get("data")
    token = data.get("value") if isinstance(data, dict) else data
    parsed = parse(token) if isinstance(token, str) else None
    if parsed is None:
        raise JWSError("HS_SIGNATURE data is not a string")
    payload = parsed.payload
    entries = payload.get("digests")
    if (
        not isinstance(payload.get("sub"), str)
        or not isinstance(payload.get("prefix"), str)
        or not isinstance(entries, list)
        or not all(
            isinstance(e, dict) and type(e.get("index")) is int and isinstance(e.get("sha256"), str)
            for e in entries
        )
    ):
        raise JWSError("the signature payload lacks sub, prefix or a list of digests")
    return parsed


def digest_problems(payload: dict[str, Any], values: Sequence[dict[str, Any]]) -> list[str]:
    """How the values differ from the digests a signature covers (empty if they match)."""
    signed = {int(e["index"]): e for e in payload["digests"]}
    problems = []
    seen = set()
    for value in values:
        if value.get("type") == SIGNATURE_TYPE:
            continue
        index = int(value["index"])
        seen.add(index)
        entry = signed.get(index)
        if entry is None:
            problems.append(f"value {index} ({value['type']}) is not covered by the signature")
        elif entry["sha256"] != value_digest(value):
            problems.append(f"value {index} ({value['type']}) differs from what was signed")
    for index, entry in signed.items():
        if index not in seen and not entry.get("hidden"):
            problems.append(f"value {index} ({entry.get('type')}) was signed but is missing")
    return problems


def pubkey_values(
    jwks: Sequence[dict[str, Any]], taken: Iterable[int], stamp: str
) -> list[dict[str, Any]]:
    """HS_PUBKEY values (format `key`, a JWK each) at the free indexes from 300 up."""
    used = set(taken)
    out = []
    index = PUBKEY_INDEX
    for jwk in jwks:
        while index in used:
            index += 1
        out.append(
            {
                "index": index,
                "type": PUBKEY_TYPE,
                "data": {"format": "key", "value": dict(jwk)},
                "ttl": SIGNATURE_TTL,
                "timestamp": stamp,
            }
        )
        used.add(index)
    return out


def with_pubkeys(values: Sequence[dict[str, Any]], jwks: Sequence[dict[str, Any]]) -> list[Any]:
    """The values with every HS_PUBKEY (and signature) replaced by `jwks`, by index."""
    kept = [v for v in values if v.get("type") not in (PUBKEY_TYPE, SIGNATURE_TYPE)]
    fresh = pubkey_values(jwks, (int(v["index"]) for v in kept), now_iso())
    return sorted([*kept, *fresh], key=lambda v: int(v["index"]))


def pubkeys_of(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JWKs of a record's HS_PUBKEY values (format `key`, an object)."""
    found = []
    for value in values:
        data = value.get("data")
        if value.get("type") == PUBKEY_TYPE and isinstance(data, dict):
            jwk = data.get("value")
            if isinstance(jwk, dict):
                found.append(jwk)
    return found


@dataclass(slots=True)
class DigestedRecord(Record):
    """A record to sign whose digest entries are known already: what a batch hands over.

    Made by `digested()` only: values sorted by (int) index, no HS_SIGNATURE among them,
    and `entries[i]` the digest_entry() of `values[i]`. The batch works the entries out
    in the one pass that checks each value, so the signer skips its own pass; it signs
    exactly what it would sign for the same values as a plain Record, and returns a
    plain Record.
    """

    entries: list[str] = field(default_factory=list)


def digested(handle: str, values: list[dict[str, Any]], entries: list[str]) -> DigestedRecord:
    """A DigestedRecord of values and their digest entries, sorted by index together.

    ValueError unless every index is an int, none is a signature and the lists match.
    """
    if len(values) != len(entries):
        raise ValueError(f"{len(values)} values but {len(entries)} digest entries")
    indexes = list(map(_index_of, values))
    if not set(map(type, indexes)) <= {int} or SIGNATURE_TYPE in map(_type_of, values):
        raise ValueError("digested() takes values with int indexes and no HS_SIGNATURE")
    if indexes != sorted(indexes):
        order = sorted(range(len(values)), key=indexes.__getitem__)
        values = [values[i] for i in order]
        entries = [entries[i] for i in order]
    return DigestedRecord(handle, values, entries)


class Signer:
    """Signs records with a node's current key (re-reading the ring after a rotation).

    `anchor_handle` names the top-level node's own prefix record, which every retired
    key counter-signs too (see the module docstring).
    """

    def __init__(
        self,
        keys_dir: Path,
        owner: str,
        *,
        issuer: str,
        prefix: str,
        anchor_handle: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.prefix = prefix
        self.anchor_key = fold(anchor_handle) if anchor_handle else None
        self._clock = clock
        self._lock = threading.Lock()
        self._ring = KeyRing.open(keys_dir, owner)
        self._stamp = self._mtime()
        self._local = threading.local()

    @property
    def ring(self) -> KeyRing:
        """The key ring, reloaded when keyring.json changed (a rotation by any process)."""
        stamp = self._mtime()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._ring = KeyRing.open(self._ring.directory.parent, self._ring.owner)
                    self._stamp = stamp
        return self._ring

    def _mtime(self) -> int:
        try:
            return self._ring.ring_file.stat().st_mtime_ns
        except OSError:
            return 0

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Within the block, this thread signs with the ring as it was on entry.

        A batch signs thousands of records: one look at keyring.json for all of them
        instead of one each. A rotation by another process during the block is seen by
        the next write after it, as if the batch had come first.
        """
        if getattr(self._local, "ring", None) is not None:
            yield
            return
        self._local.ring = self.ring
        try:
            yield
        finally:
            self._local.ring = None

    def rotate(self) -> KeyRing:
        """Rotate the ring: a new current key, the old one retired."""
        with self._lock:
            self._ring = self._ring.rotate()
            self._stamp = self._mtime()
            return self._ring

    def __call__(self, record: Record) -> Record:
        """The record with fresh signatures in place of any it carried."""
        ring: KeyRing | None = getattr(self._local, "ring", None)
        if ring is None:
            ring = self.ring
        if (
            type(record) is DigestedRecord
            and (self.anchor_key is None or record.key != self.anchor_key)
            and type(record.handle) is str
            and type(self.issuer) is str
            and type(self.prefix) is str
        ):
            return self._sign_digested(record, ring.current)
        values = [v for v in record.values if v.get("type") != SIGNATURE_TYPE]
        indexes = list(map(int, [v["index"] for v in values]))
        ordered = sorted(indexes)
        if indexes != ordered:
            values.sort(key=_index)  # as stored; also the order of the digests
        taken = set(ordered)
        if SIGNATURE_INDEX in taken:
            raise _reserved(record.handle)
        payload = _payload_json(self.issuer, record.handle, int(self._clock()), self.prefix, values)
        stamp = now_iso()
        signers: list[SigningKey] = [ring.current]
        if self.anchor_key is not None and record.key == self.anchor_key:
            signers.extend(ring.retired)
        index = SIGNATURE_INDEX
        for key in signers:
            while index in taken:
                index += 1
            signature = _signature(index, payload, key, stamp)
            # Into its place by index: the rest is sorted already (and the index is free).
            at = bisect.bisect(ordered, index)
            values.insert(at, signature)
            ordered.insert(at, index)
            taken.add(index)
        return Record(record.handle, values)

    def _sign_digested(self, record: DigestedRecord, key: SigningKey) -> Record:
        """__call__ for a DigestedRecord: one signature, from the entries given."""
        values = record.values
        indexes = list(map(_index_of, values))
        at = bisect.bisect_left(indexes, SIGNATURE_INDEX)
        if at < len(indexes) and indexes[at] == SIGNATURE_INDEX:
            raise _reserved(record.handle)
        payload = _payload_text(
            self.issuer, record.handle, int(self._clock()), self.prefix, record.entries
        )
        signature = _signature(SIGNATURE_INDEX, payload, key, now_iso())
        out = values[:at]
        out.append(signature)
        out.extend(values[at:])
        return Record(record.handle, out)


def _signature(index: int, payload: bytes, key: SigningKey, stamp: str) -> dict[str, Any]:
    """The HS_SIGNATURE value of a canonical payload signed with `key`."""
    return {
        "index": index,
        "type": SIGNATURE_TYPE,
        "data": {"format": "string", "value": sign_canonical(payload, key.private, key.kid)},
        "ttl": SIGNATURE_TTL,
        "timestamp": stamp,
    }


def _reserved(handle: str) -> InvalidValue:
    """The refusal of a client's value at the signature's index."""
    return InvalidValue(
        f"index {SIGNATURE_INDEX} of {handle!r} is reserved for the node's "
        f"{SIGNATURE_TYPE}: put the value at another index",
        handle=handle,
    )


_index_of = operator.itemgetter("index")
_type_of = operator.itemgetter("type")


def _index(value: dict[str, Any]) -> int:
    return int(value["index"])


def sealed(build: Callable[[], Iterable[Record]], signer: Signer) -> Callable[[], list[Record]]:
    """A seed builder whose records come out signed."""

    def build_signed() -> list[Record]:
        return [signer(record) for record in build()]

    return build_signed
