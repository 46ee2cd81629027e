"""Handle REST semantics on a store: resolve, create, replace, partial update, delete, list."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from idcore.credentials import (
    Credentials,
    FailureThrottle,
    Identity,
    SecretVerifier,
    hash_secret,
    parse_basic,
)
from idcore.errors import (
    AuthenticationFailed,
    HandleAlreadyExists,
    HandleNotFound,
    InsufficientPermissions,
    InvalidCredential,
    InvalidHandle,
    InvalidValue,
    NotResponsible,
    ServerBusy,
    ValueAlreadyExists,
    ValuesNotFound,
)
from idcore.identifier import NA_PREFIX, Handle, ancestors, fold, parse_handle
from idcore.store import Record, Store
from idcore.values import (
    ALL_PERMISSIONS,
    MAX_VALUE_BYTES,
    MAX_VALUES_PER_RECORD,
    SECRET_PERMISSIONS,
    AdminRef,
    HandleValue,
    admin_refs,
    now_iso,
    value_is_public,
)
from idcore.web import client_address

SECKEY_INDEX = 300

log = logging.getLogger("idr.auth")

Validator = Callable[[Record], None]
"""Checks a record about to be written; raises InvalidValue (202) to refuse it."""

Signer = Callable[[Record], Record]
"""Returns the record as it will be stored, with its HS_SIGNATURE (idcore.signing)."""


@dataclass(frozen=True, slots=True)
class WriteLimits:
    """Limits every write is checked against before anything is stored."""

    max_values_per_record: int = MAX_VALUES_PER_RECORD
    max_value_bytes: int = MAX_VALUE_BYTES


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a successful write: the handle written and whether it was created."""

    handle: str
    created: bool


@dataclass(frozen=True, slots=True)
class PutRequest:
    """A PUT as the REST layer hands it over."""

    handle: Handle
    values: list[HandleValue]
    indexes: list[int] | None  # None: whole record; []: index=various
    overwrite: bool
    mint_suffix: bool


def filter_values(
    values: Sequence[dict[str, Any]], indexes: Sequence[int], types: Sequence[str]
) -> list[dict[str, Any]]:
    """Keep values matching any index or type filter; a type ending in '.' matches subtypes."""
    if not indexes and not types:
        return list(values)
    wanted_idx = set(indexes)
    exact = {t for t in types if not t.endswith(".")}
    stems = tuple(t for t in types if t.endswith("."))
    return [
        v
        for v in values
        if v["index"] in wanted_idx or v["type"] in exact or (stems and v["type"].startswith(stems))
    ]


def public_values(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop values an anonymous reader may not see (HS_SECKEY and other non-public ones)."""
    return [v for v in values if value_is_public(v)]


class RecordService:
    """The records one node homes, with Handle write semantics and admin rights."""

    def __init__(
        self,
        store: Store,
        *,
        admin_handle: str,
        homes: Callable[[Handle], bool],
        describe_home: str,
        validator: Validator | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.store = store
        self.admin = Identity(SECKEY_INDEX, admin_handle)
        self._homes = homes
        self._describe_home = describe_home
        self._verifier = SecretVerifier()
        self.validator = validator
        self.signer = signer
        self.limits = WriteLimits()
        self.throttle = FailureThrottle()

    # -- reading -----------------------------------------------------------------

    def check_home(self, handle: Handle) -> None:
        """Raise NotResponsible unless this node homes the handle."""
        if not self._homes(handle):
            raise NotResponsible(
                f"this node does not home {handle.text!r}: it serves {self._describe_home}",
                handle=handle.text,
            )

    def resolve(
        self, handle: Handle, indexes: Sequence[int] = (), types: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Public values of a record matching the filters; HandleNotFound if absent."""
        self.check_home(handle)
        record = self.store.get(handle.key)
        if record is None:
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        return filter_values(public_values(record.values), indexes, types)

    def public_values_text(self, handle: Handle) -> str | bytes | None:
        """The JSON text of a record's values when the store can give it as stored.

        Only for a record whose values are all public, from a store that keeps its text
        (SQLite; Redis builds it from its blob, as UTF-8 bytes); None means: resolve the
        general way. HandleNotFound if absent.
        """
        self.check_home(handle)
        reader = getattr(self.store, "public_values_text", None)
        if reader is None:
            return None
        found, text = reader(handle.key)
        if not found:
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        return cast("str | bytes | None", text)

    def list_handles(
        self, prefix: str, page: int | None, page_size: int | None
    ) -> tuple[int, list[str]]:
        """Handles under a prefix, one page at a time."""
        size = page_size if page_size is not None else 10_000
        offset = (page or 0) * size
        return self.store.list_handles(prefix, offset, size)

    # -- authentication ----------------------------------------------------------

    def authenticate(self, authorization: str | None, client: str | None = None) -> Identity:
        """Check HTTP Basic credentials against the HS_SECKEY of the admin handle.

        Failures are logged (never the secret) and counted per client address (that of
        the current request unless given); a client with too many recent failures is
        refused with ServerBusy (3, HTTP 503, Retry-After) before its secret is checked.
        """
        if not authorization:
            return parse_basic(authorization).identity  # raises AuthenticationNeeded
        client = client if client is not None else client_address()
        wait = self.throttle.retry_after(client)
        if wait > 0:
            seconds = math.ceil(wait)
            log.warning("login refused: client %s is throttled for %d s", client, seconds)
            raise ServerBusy(
                f"too many failed logins from {client}: {self.throttle.max_failures} within "
                f"{self.throttle.window:g} s; try again in {seconds} s",
                retryAfter=seconds,
            )
        identity: Identity | None = None
        try:
            creds = parse_basic(authorization)
            identity = creds.identity
            self._check_secret(creds)
        except (AuthenticationFailed, InvalidCredential) as exc:
            count = self.throttle.failed(client)
            log.warning(
                "failed login from %s as %s: %s (%d of %d allowed within %g s)",
                client,
                identity or "(unreadable credentials)",
                exc.message,
                count,
                self.throttle.max_failures,
                self.throttle.window,
            )
            raise
        return creds.identity

    def _check_secret(self, creds: Credentials) -> None:
        ident = creds.identity
        try:
            admin_handle = parse_handle(ident.handle)
        except InvalidHandle:
            raise InvalidCredential(f"identity {ident} names an invalid handle") from None
        record = self.store.get(admin_handle.key) if self._homes(admin_handle) else None
        if record is None:
            raise InvalidCredential(
                f"identity {ident}: admin handle {ident.handle!r} is not on this node"
            )
        stored = next(
            (v for v in record.values if v["index"] == ident.index and v["type"] == "HS_SECKEY"),
            None,
        )
        if stored is None:
            raise InvalidCredential(
                f"identity {ident}: {ident.handle!r} has no HS_SECKEY at index {ident.index}"
            )
        if not self._verifier.verify(creds.secret, str(stored["data"]["value"])):
            raise AuthenticationFailed(f"wrong secret for identity {ident}")

    # -- rights ------------------------------------------------------------------

    def _admins_for(self, handle: Handle, current: Record | None) -> list[AdminRef]:
        refs = admin_refs(current.values) if current else []
        chain = ancestors(handle.homed_prefix)
        if handle.is_prefix_record:
            chain = chain[1:]  # the prefix record's own HS_ADMIN is `current`
        keys = [fold(f"{NA_PREFIX}/{p}") for p in chain]
        for record in self.store.get_many(keys):
            if record is not None:
                refs.extend(admin_refs(record.values))
        return refs

    def require(
        self, identity: Identity, right: str, handle: Handle, current: Record | None
    ) -> None:
        """Raise InsufficientPermissions unless an HS_ADMIN in scope grants the right."""
        self.require_all(identity, (right,), handle, current)

    def require_all(
        self, identity: Identity, rights: Sequence[str], handle: Handle, current: Record | None
    ) -> None:
        """Raise InsufficientPermissions naming the first right no HS_ADMIN in scope grants."""
        if identity.index == self.admin.index and identity.key == self.admin.key:
            return
        mine = [
            ref
            for ref in self._admins_for(handle, current)
            if ref.index == identity.index and fold(ref.handle) == identity.key
        ]
        for right in rights:
            if not any(ref.allows(right) for ref in mine):
                raise InsufficientPermissions(
                    f"identity {identity} may not {right} on {handle.text!r}: no HS_ADMIN of "
                    "the record or its prefix grants it",
                    handle=handle.text,
                    right=right,
                )

    # -- writing -----------------------------------------------------------------

    def put(self, request: PutRequest, identity: Identity) -> WriteResult:
        """Create, replace or partially update a record, atomically."""
        handle = request.handle
        if request.mint_suffix:
            handle = Handle(handle.prefix, f"{handle.suffix}{uuid.uuid4().hex[:12].upper()}")
            handle = parse_handle(handle.text)
        self.check_home(handle)
        stamp = now_iso()
        incoming = [self._prepare(v, stamp) for v in request.values]
        created = False

        def change(current: Record | None) -> Record:
            # Redis may run this more than once (optimistic locking): no side effects.
            nonlocal created
            created = False
            if request.indexes is None:
                if current is None:
                    self.require(identity, _create_right(handle), handle, None)
                    created = True
                    values = incoming
                    if not any(v["type"] == "HS_ADMIN" for v in values):
                        values = [*values, self._default_admin(identity, values, stamp)]
                    return self._checked(Record(handle.text, sorted(values, key=_by_index)))
                if not request.overwrite:
                    raise HandleAlreadyExists(
                        f"handle {handle.text!r} already exists (overwrite=false)",
                        handle=handle.text,
                    )
                self.require_all(
                    identity, replace_rights(current.values, incoming), handle, current
                )
                return self._checked(Record(current.handle, sorted(incoming, key=_by_index)))
            if current is None:
                raise HandleNotFound(
                    f"handle {handle.text!r} not found: create it with a PUT without index=",
                    handle=handle.text,
                )
            existing = {v["index"]: v for v in current.values}
            self.require_all(identity, update_rights(existing, incoming), handle, current)
            for value in incoming:
                if value["index"] in existing:
                    if not request.overwrite:
                        raise ValueAlreadyExists(
                            f"index {value['index']} already exists in {handle.text!r} "
                            "(overwrite=false)",
                            handle=handle.text,
                        )
                elif not request.overwrite:
                    created = True
                existing[value["index"]] = value
            return self._checked(Record(current.handle, sorted(existing.values(), key=_by_index)))

        self.store.mutate(handle.key, change)
        return WriteResult(handle.text, created)

    def delete(self, handle: Handle, indexes: Sequence[int], identity: Identity) -> None:
        """Delete a whole record, or only the listed values."""
        self.check_home(handle)

        def change(current: Record | None) -> Record | None:
            if current is None:
                raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
            if not indexes:
                right = "delDerivedPrefix" if handle.is_prefix_record else "deleteHandle"
                self.require(identity, right, handle, current)
                return None
            wanted = set(indexes)
            removed = [v for v in current.values if v["index"] in wanted]
            rights = sorted({_value_right("remove", v, None) for v in removed} or {"removeValue"})
            self.require_all(identity, rights, handle, current)
            kept = [v for v in current.values if v["index"] not in wanted]
            if not removed:
                raise ValuesNotFound(
                    f"{handle.text!r} has no value at index {sorted(wanted)}", handle=handle.text
                )
            return self._checked(Record(current.handle, kept))

        self.store.mutate(handle.key, change)

    def _checked(self, record: Record) -> Record:
        limit = self.limits.max_values_per_record
        count = len(record.values)
        if count > limit:
            # The node's own HS_SIGNATURE (replaced on every write) is not the client's
            # value. Left out only when the total is over: it never makes the count larger.
            count = sum(1 for v in record.values if v.get("type") != "HS_SIGNATURE")
        if count > limit:
            raise InvalidValue(
                f"{record.handle!r} would hold {count} values: the limit is "
                f"{limit} values per record",
                handle=record.handle,
            )
        # Templates (and later signatures) see the record exactly as it will be stored.
        if self.validator is not None:
            self.validator(record)
        return self.sign(record)

    def sign(self, record: Record) -> Record:
        """The record as stored: signed by this node's key when it has a signer."""
        return record if self.signer is None else self.signer(record)

    def _prepare(self, value: HandleValue, stamp: str) -> dict[str, Any]:
        wire = value.to_wire()
        wire["timestamp"] = stamp
        if value.type == "HS_SECKEY":
            if value.data.format != "string":
                raise InvalidValue(
                    f"HS_SECKEY at index {value.index} must have format 'string' (the secret)"
                )
            # Secrets are stored only as salted hashes and never readable by the public.
            wire["data"] = {"format": "string", "value": hash_secret(str(value.data.value))}
            wire["permissions"] = SECRET_PERMISSIONS
        return wire

    @staticmethod
    def _default_admin(
        identity: Identity, values: list[dict[str, Any]], stamp: str
    ) -> dict[str, Any]:
        used = {v["index"] for v in values}
        index = next(i for i in range(100, 2**31) if i not in used)
        return {
            "index": index,
            "type": "HS_ADMIN",
            "data": {
                "format": "admin",
                "value": {
                    "handle": identity.handle,
                    "index": identity.index,
                    "permissions": ALL_PERMISSIONS,
                },
            },
            "ttl": 86400,
            "timestamp": stamp,
        }


def _value_right(kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    """`addValue`, `removeValue`, `modifyValue`, or the *Admin right when HS_ADMIN is involved."""
    admin = any(v is not None and v.get("type") == "HS_ADMIN" for v in (old, new))
    return f"{kind}{'Admin' if admin else 'Value'}"


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("type", "data", "ttl", "permissions")
    return all(old.get(k) == new.get(k) for k in keys)


def replace_rights(
    current: Sequence[dict[str, Any]], incoming: Sequence[dict[str, Any]]
) -> list[str]:
    """The rights a whole-record replace needs: one per kind of value added, removed or changed.

    A value that changes nothing needs no right; a replace that changes nothing at all
    needs modifyValue.
    """
    # Signatures are the node's, redone on every write: they need no right.
    old = {v["index"]: v for v in current if v.get("type") != "HS_SIGNATURE"}
    new = {v["index"]: v for v in incoming if v.get("type") != "HS_SIGNATURE"}
    rights = set()
    for index, value in new.items():
        if index not in old:
            rights.add(_value_right("add", None, value))
        elif not _same(old[index], value):
            rights.add(_value_right("modify", old[index], value))
    for index, value in old.items():
        if index not in new:
            rights.add(_value_right("remove", value, None))
    return sorted(rights or {"modifyValue"})


def update_rights(
    existing: dict[int, dict[str, Any]], incoming: Sequence[dict[str, Any]]
) -> list[str]:
    """The rights a partial update (`?index=`) needs: add or modify, per value (an update of
    nothing needs modifyValue)."""
    rights = {
        _value_right("modify", existing[v["index"]], v)
        if v["index"] in existing
        else _value_right("add", None, v)
        for v in incoming
    }
    return sorted(rights or {"modifyValue"})


def _create_right(handle: Handle) -> str:
    return "addDerivedPrefix" if handle.is_prefix_record else "addHandle"


def _by_index(value: dict[str, Any]) -> int:
    return int(value["index"])
