"""Batch registration (PROTOCOL.md: at most 2000 identifiers per request, answered item by item).

One request, one authentication; every item is checked on its own (syntax, home, values,
rights, template) and written all-or-nothing; items do not depend on each other. The
fast path reads every current record in one round trip and writes every accepted one in
one transaction per store (`Store.mutate_many`), with the same value preparation as a
single PUT (timestamps, HS_SECKEY hashed, a default HS_ADMIN on create). The pass that
checks an item's values also works out each one's digest entry, which the node's signer
then signs from (idcore.signing.DigestedRecord) instead of going over the values again.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from idcore.codes import ResponseCode
from idcore.credentials import Identity
from idcore.errors import (
    HandleAlreadyExists,
    HandleError,
    InsufficientPermissions,
    InvalidValue,
    ProtocolError,
)
from idcore.identifier import Handle, fold, parse_handle
from idcore.records import RecordService, replace_rights
from idcore.signing import (
    SIGNATURE_TYPE,
    Signer,
    admin_entry,
    digest_entry,
    digested,
    string_entry,
    strip_signatures,
)
from idcore.stages import TEMPLATE_INDEX, TEMPLATE_TYPE
from idcore.store import Record
from idcore.values import (
    ALL_PERMISSIONS,
    DEFAULT_TTL,
    MAX_VALUE_CHARS,
    data_bytes,
    now_iso,
    parse_values,
)
from idcore.web import MAX_JSON_DEPTH

MAX_BATCH = 2000


@dataclass(slots=True)
class ItemResult:
    """How one item of a batch ended."""

    handle: str | None
    code: int
    message: str
    problems: list[Any] | None = None

    @property
    def ok(self) -> bool:
        """True if the item was written."""
        return self.code == int(ResponseCode.SUCCESS)

    def to_json(self) -> dict[str, Any]:
        """`{handle, responseCode, message}` (plus `problems` for an invalid value)."""
        out: dict[str, Any] = {
            "handle": self.handle,
            "responseCode": self.code,
            "message": self.message,
        }
        if self.problems:
            out["problems"] = self.problems
        return out

    @classmethod
    def failed(cls, handle: str | None, exc: HandleError) -> ItemResult:
        """The result of an item refused with a Handle error."""
        problems = exc.details.get("problems")
        return cls(handle, int(exc.code), exc.message, problems if problems else None)


@dataclass(slots=True)
class _Item:
    position: int
    sent: str
    handle: Handle
    key: str  # handle.key and handle.is_prefix_record, worked out once
    prefix_record: bool
    values: list[dict[str, Any]]
    created: Record  # what a create stores (checked already)


@dataclass(slots=True)
class BatchRequest:
    """A parsed batch body: raw items and the overwrite flag."""

    items: list[Any]
    overwrite: bool


def parse_batch_body(body: Any, default_overwrite: bool = False) -> BatchRequest:
    """`{"handles": [...], "overwrite": false}` or a bare list; ProtocolError (4) otherwise."""
    overwrite = default_overwrite
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        if "handles" not in body:
            raise ProtocolError(
                'the body must be {"handles": [{"handle", "values"}, ...]} or a list'
            )
        items = body["handles"]
        if "overwrite" in body:
            if not isinstance(body["overwrite"], bool):
                raise ProtocolError("'overwrite' must be true or false")
            overwrite = body["overwrite"]
    else:
        raise ProtocolError('the body must be {"handles": [...]} or a JSON array of items')
    if not isinstance(items, list):
        raise ProtocolError("'handles' must be a list of {handle, values} objects")
    if len(items) > MAX_BATCH:
        raise ProtocolError(
            f"{len(items)} items in one batch: the limit is {MAX_BATCH} (split it; 100 to "
            "1500 per request is recommended)"
        )
    return BatchRequest(items, overwrite)


def register_batch(
    service: RecordService, identity: Identity, items: list[Any], overwrite: bool
) -> list[ItemResult]:
    """Check and write every item; one result per item, in order."""
    stamp = now_iso()
    results: list[ItemResult | None] = [None] * len(items)
    accepted: dict[str, _Item] = {}
    first_seen: dict[str, int] = {}
    for position, raw in enumerate(items):
        sent = raw.get("handle") if isinstance(raw, dict) else None
        shown = sent if isinstance(sent, str) else None
        try:
            item = _prepare_item(service, identity, position, raw, stamp)
            key = item.key
            if key in first_seen:
                raise ProtocolError(
                    f"{item.sent!r} appears more than once in this batch (first at item "
                    f"{first_seen[key]}): each identifier at most once",
                    handle=item.sent,
                )
            first_seen[key] = position
            accepted[key] = item
        except HandleError as exc:
            results[position] = ItemResult.failed(shown, exc)

    rights = _Rights(service, identity)

    def change(keys: list[str], current: list[Record | None]) -> list[Record]:
        # May run again for the same keys (Redis optimistic locking): results are overwritten.
        out: list[Record] = []
        for key, existing in zip(keys, current, strict=True):
            item = accepted[key]
            try:
                record, created = _build(service, rights, item, existing, overwrite)
            except HandleError as exc:
                results[item.position] = ItemResult.failed(item.sent, exc)
                continue
            out.append(record)
            results[item.position] = ItemResult(
                item.sent, int(ResponseCode.SUCCESS), "created" if created else "replaced"
            )
        return out

    if accepted:
        service.store.mutate_many(list(accepted), change)
    return [r if r is not None else ItemResult(None, 2, "not processed") for r in results]


def _prepare_item(
    service: RecordService, identity: Identity, position: int, raw: Any, stamp: str
) -> _Item:
    """Everything about an item that does not depend on the stored record."""
    if not isinstance(raw, dict):
        raise ProtocolError(f"item {position} must be an object {{handle, values}}")
    sent = raw.get("handle")
    if not isinstance(sent, str):
        raise ProtocolError(f"item {position} has no 'handle' string")
    try:
        handle = parse_handle(sent)
    except HandleError as exc:
        exc.handle = sent
        raise
    service.check_home(handle)
    # The Handle form says "values"; the SNMS form says "value" (and "templateVersion").
    raw_values = raw["values"] if "values" in raw else raw.get("value")
    if raw_values is None:
        raise ProtocolError(f"item {position} ({sent!r}) has no 'values' list", handle=sent)
    limits = service.limits
    # With the node's own signer, the fast path also works out each value's digest entry
    # (the signature's part for it) while it has the value's parts at hand.
    entries: list[str] | None = [] if isinstance(service.signer, Signer) else None
    # The fast path drops HS_SIGNATURE values itself, as strip_signatures does.
    wire = _plain_values(
        raw_values, stamp, limits.max_values_per_record, limits.max_value_bytes, entries
    )
    if wire is None:
        entries = None  # the full path's values are signed the general way
        raw_values = strip_signatures(raw_values)
        # Values at body → handles → item → values: three levels below the body's top.
        if nesting_exceeds(raw_values, MAX_JSON_DEPTH - 3):
            raise ProtocolError(
                f"item {position} ({sent!r}) nests JSON deeper than {MAX_JSON_DEPTH} levels",
                handle=sent,
            )
        try:
            values = parse_values(
                raw_values,
                max_values=limits.max_values_per_record,
                max_value_bytes=limits.max_value_bytes,
            )
        except InvalidValue as exc:
            exc.handle = sent
            raise
        wire = [service._prepare(v, stamp) for v in values]
    template = raw.get("templateVersion")
    if template is not None:
        _apply_template_version(sent, wire, template, stamp)
    # The record a create would store, checked now: outside the write transaction, so a
    # batch holds the store's write lock only to read, decide and write.
    complete = wire
    if "HS_ADMIN" not in map(_type_of, complete):
        complete = [*complete, service._default_admin(identity, complete, stamp)]
    created: Record
    if entries is not None:
        # The template value and the default HS_ADMIN, if added: their entries too.
        entries.extend(map(digest_entry, complete[len(entries) :]))
        created = digested(handle.text, complete, entries)
    else:
        created = Record(handle.text, sorted(complete, key=_index_of))
    # Limits, template and signature as a single PUT applies them, outside the transaction:
    # a create stores exactly this record.
    return _Item(
        position,
        sent,
        handle,
        handle.key,
        handle.is_prefix_record,
        wire,
        service._checked(created),
    )


def nesting_exceeds(body: Any, limit: int) -> bool:
    """True if parsed JSON nests arrays/objects more than `limit` levels (as web._depth)."""
    level = [body] if isinstance(body, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below.extend([c for c in children if isinstance(c, dict | list)])
        level = below
    return False


_MAX_INDEX = 2**31 - 1
_ADMIN_KEYS = frozenset(("handle", "index", "permissions"))
_BITS = re.compile(r"[01]{1,12}")
# Value types with control characters go the full path, which refuses them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PLAIN_TYPES: set[str] = set()
"""Value types seen to pass the fast path's type checks (a record repeats the same dozen)."""
_PLAIN_TYPES_MAX = 4096
_ADMIN_JSON_SLACK = 64
"""Bytes of compact admin JSON besides the handle: keys, an index, 12 permission bits."""
_WIRE_ORDERS = frozenset(
    {
        ("index", "type", "data"),
        ("index", "type", "data", "ttl"),
        ("index", "type", "data", "ttl", "timestamp"),
    }
)
"""Keys of a value that becomes its stored self in place (the stored key order follows)."""


def _plain_values(
    raw: Any, stamp: str, max_values: int, max_bytes: int, entries: list[str] | None = None
) -> list[dict[str, Any]] | None:
    """Wire values for the common case, or None to take the full (pydantic) path.

    The common case is a list of plain string values (`{index, type, data: {format:
    "string", value}, ttl}` or `data` as a bare string) and HS_ADMIN values that
    parse_values would accept unchanged; HS_SIGNATURE values are dropped (as
    strip_signatures drops them). Anything else (other formats, HS_SECKEY, permissions,
    index strings, unknown keys, any error) goes through parse_values and RecordService's
    preparation, which also words the errors. The result is what that path would store.
    This loop is the batch's hottest Python: keep it lean.

    A value whose keys come in the stored order is made the stored value in place (data
    normalised, ttl and timestamp set) once it has passed, instead of being copied: `raw`
    is parsed JSON that this batch owns. If a later value sends the list to the full
    path, the ones changed already read there as they did before.

    With `entries`, the digest entry of each value returned (idcore.signing.digest_entry)
    is appended to it, in the same order; on None it holds some: the caller drops it.
    """
    if type(raw) is not list:
        return None
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    # Strings this short fit both limits whatever their characters (UTF-8: at most 4 bytes
    # a character), so only longer ones are measured.
    short = min(MAX_VALUE_CHARS, max_bytes // 4)
    for value in raw:
        if type(value) is not dict:
            return None
        vtype = value.get("type")
        if vtype == SIGNATURE_TYPE:
            continue
        index = value.get("index")
        data = value.get("data")
        ttl = value.get("ttl", DEFAULT_TTL)
        stamped = value.get("timestamp")
        in_order = tuple(value) in _WIRE_ORDERS
        # index, type and data, plus optional ttl and timestamp: nothing else.
        if not in_order and len(value) != 3 + ("ttl" in value) + ("timestamp" in value):
            return None
        if (
            type(index) is not int
            or type(vtype) is not str
            or type(ttl) is not int
            or index < 1
            or index > _MAX_INDEX
            or ttl < 0
            or index in seen
            or (stamped is not None and type(stamped) is not str)
        ):
            return None
        if vtype not in _PLAIN_TYPES:
            if len(vtype) > 255 or vtype == "HS_SECKEY" or _CONTROL.search(vtype) is not None:
                return None
            if len(_PLAIN_TYPES) >= _PLAIN_TYPES_MAX:
                _PLAIN_TYPES.clear()
            _PLAIN_TYPES.add(vtype)
        # String data (bare or {format, value}) leaves `admin` None; admin data sets it.
        admin: dict[str, Any] | None = None
        text: Any = data
        if type(data) is dict and len(data) == 2:
            fmt = data.get("format")
            text = data.get("value")
            if fmt == "admin":
                admin = _plain_admin(text, max_bytes)
                if admin is None:
                    return None
            elif fmt != "string":
                return None
        if admin is None:
            if type(text) is not str or (len(text) > short and _too_big(text, max_bytes)):
                return None
            wire_data: dict[str, Any] = {"format": "string", "value": text}
            if entries is not None:
                # Public (no permissions on this path): the memoised digest entries.
                entries.append(string_entry(index, vtype, "string", text))
        else:
            wire_data = {"format": "admin", "value": admin}
            if entries is not None:
                entries.append(
                    admin_entry(index, vtype, admin["handle"], admin["index"], admin["permissions"])
                )
        seen.add(index)
        if in_order:
            value["data"] = wire_data
            value["ttl"] = ttl
            value["timestamp"] = stamp
            out.append(value)
        else:
            out.append(
                {"index": index, "type": vtype, "data": wire_data, "ttl": ttl, "timestamp": stamp}
            )
    if len(out) > max_values:
        return None  # the full path words the refusal
    return out


def _too_big(text: str, max_bytes: int) -> bool:
    # As ValueData: characters first, then UTF-8 bytes (lone surrogates count 3, as there).
    if len(text) > MAX_VALUE_CHARS:
        return True
    return len(text) * 4 > max_bytes and data_bytes(text) > max_bytes


def _plain_admin(raw: Any, max_bytes: int) -> dict[str, Any] | None:
    """HS_ADMIN data as AdminRef would store it, or None for anything unusual."""
    if type(raw) is not dict or not raw.keys() <= _ADMIN_KEYS:
        return None
    handle, index = raw.get("handle"), raw.get("index")
    bits = raw.get("permissions", ALL_PERMISSIONS)
    if (
        type(handle) is not str
        or not 1 <= len(handle) <= 255
        or type(index) is not int
        or not 0 <= index <= _MAX_INDEX
        or type(bits) is not str
        or not _BITS.fullmatch(bits)
    ):
        return None
    # ValueData limits the admin's compact JSON too; a character takes at most 6 bytes
    # there (a \uXXXX escape), so only a long handle or a small limit needs measuring.
    if len(handle) * 6 + _ADMIN_JSON_SLACK > max_bytes and data_bytes(raw) > max_bytes:
        return None
    return {"handle": handle, "index": index, "permissions": bits.ljust(12, "0")}


def _apply_template_version(
    sent: str, wire: list[dict[str, Any]], template: Any, stamp: str
) -> None:
    if not isinstance(template, str) or not template:
        raise InvalidValue("'templateVersion' must be a template name such as furniture.product@1")
    named = next((v for v in wire if v["index"] == TEMPLATE_INDEX), None)
    if named is None:
        wire.append(
            {
                "index": TEMPLATE_INDEX,
                "type": TEMPLATE_TYPE,
                "data": {"format": "string", "value": template},
                "ttl": 86400,
                "timestamp": stamp,
            }
        )
    elif named["data"].get("value") != template:
        raise InvalidValue(
            f"templateVersion {template!r} differs from the {TEMPLATE_TYPE} value at index "
            f"{TEMPLATE_INDEX} ({named['data'].get('value')!r})",
            handle=sent,
        )


def _build(
    service: RecordService,
    rights: _Rights,
    item: _Item,
    existing: Record | None,
    overwrite: bool,
) -> tuple[Record, bool]:
    """The record to store for one item, as a whole-record PUT would store it."""
    handle = item.handle
    if existing is None:
        right = "addDerivedPrefix" if item.prefix_record else "addHandle"
        rights.require(right, handle, item.prefix_record, None)
        # Built and checked before the transaction (see _prepare_item).
        return item.created, True
    if not overwrite:
        raise HandleAlreadyExists(
            f"handle {item.sent!r} already exists (overwrite=false)", handle=item.sent
        )
    # The same rights a whole-record PUT needs: admin bits for HS_ADMIN changes included.
    service.require_all(
        rights.identity, replace_rights(existing.values, item.values), handle, existing
    )
    # A replacement keeps the stored spelling and gets no default HS_ADMIN: check it anew.
    record = Record(existing.handle, sorted(item.values, key=_index_of))
    return service._checked(record), False


class _Rights:
    """RecordService.require, remembered per prefix for the length of one batch."""

    def __init__(self, service: RecordService, identity: Identity) -> None:
        self._service = service
        self.identity = identity
        self._by_prefix: dict[tuple[str, bool, str], bool] = {}

    def require(
        self, right: str, handle: Handle, prefix_record: bool, current: Record | None
    ) -> None:
        """Raise InsufficientPermissions unless the identity holds the right on the handle.

        `prefix_record` is handle.is_prefix_record, which the caller knows already.
        """
        homed = handle.suffix if prefix_record else handle.prefix  # handle.homed_prefix
        memo = (fold(homed), prefix_record, right)
        granted = self._by_prefix.get(memo)
        if granted is None:
            # Without a current record, require() looks only at the node admin and the
            # prefix chain: the answer is the same for every handle under this prefix.
            try:
                self._service.require(self.identity, right, handle, None)
                granted = True
            except InsufficientPermissions:
                granted = False
            self._by_prefix[memo] = granted
        if granted:
            return
        # The record's own HS_ADMIN may still grant it.
        self._service.require(self.identity, right, handle, current)


# Wire values here always have int indexes (the fast path's own, or HandleValue's), so
# the C getters order them as int(value["index"]) would.
_index_of = operator.itemgetter("index")
_type_of = operator.itemgetter("type")
