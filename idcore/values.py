"""Handle values and records as pydantic models, with the data formats of the REST API."""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from idcore.errors import InvalidValue

DEFAULT_TTL = 86400
# Limits of a write (defaults; a node's settings may change the last three).
MAX_VALUE_CHARS = 4000
"""Characters (code points) of one string value: PROTOCOL.md, enterprise-node strings."""
MAX_VALUE_BYTES = 16 * 1024
"""UTF-8 bytes of one value's data; at least 4 x MAX_VALUE_CHARS, so any string within the
character limit also fits in bytes (4 bytes is the longest UTF-8 encoding of a character)."""
MAX_VALUES_PER_RECORD = 1000
"""Values one record may hold."""
MAX_JSON_DEPTH = 32
"""Nesting of arrays and objects in a JSON request body."""
VALUE_BYTES_CONTEXT = "max_value_bytes"
"""Validation-context key that overrides MAX_VALUE_BYTES (see parse_values)."""
PUBLIC_READ_PERMISSIONS = "1110"
SECRET_PERMISSIONS = "1100"

# Bit order of HS_ADMIN permissions, most significant first (PROTOCOL.md).
ADMIN_PERMISSION_BITS = (
    "listHandles",
    "readValue",
    "addAdmin",
    "removeAdmin",
    "modifyAdmin",
    "addValue",
    "removeValue",
    "modifyValue",
    "delDerivedPrefix",
    "addDerivedPrefix",
    "deleteHandle",
    "addHandle",
)
ALL_PERMISSIONS = "111111111111"

DataFormat = Literal["string", "base64", "hex", "admin", "vlist", "site", "key"]


_stamp: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """Current UTC time in the Handle API's timestamp form."""
    global _stamp
    # Whole seconds: the text changes once a second, and a batch asks for it per record.
    second = int(time.time())
    last = _stamp
    if last[0] == second:
        return last[1]
    text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    _stamp = (second, text)
    return text


def _no_bool_or_float(raw: Any) -> Any:
    """An index is an integer (or its decimal string): never True or 1.0."""
    if isinstance(raw, bool | float):
        raise ValueError("index must be an integer")
    return raw


class AdminRef(BaseModel):
    """HS_ADMIN data: who administers the record, and with which rights."""

    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=1, max_length=255)
    # pyhandle sends the index as a string ("200"); the API answers an int.
    index: int = Field(ge=0, le=2**31 - 1)
    permissions: str = Field(default=ALL_PERMISSIONS, pattern=r"^[01]{1,12}$")

    @field_validator("index", mode="before")
    @classmethod
    def _strict_index(cls, raw: Any) -> Any:
        return _no_bool_or_float(raw)

    @field_validator("permissions")
    @classmethod
    def _pad(cls, bits: str) -> str:
        # Handle tools pad short permission strings with zeros.
        return bits.ljust(12, "0")

    def allows(self, right: str) -> bool:
        """True if the named permission bit is set."""
        return self.permissions[ADMIN_PERMISSION_BITS.index(right)] == "1"


class HandleRef(BaseModel):
    """One entry of an HS_VLIST: a handle value reference."""

    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=1, max_length=255)
    index: int = Field(ge=0, le=2**31 - 1)

    @field_validator("index", mode="before")
    @classmethod
    def _strict_index(cls, raw: Any) -> Any:
        return _no_bool_or_float(raw)


class ValueData(BaseModel):
    """The `data` member of a value: a format and a value of that format."""

    model_config = ConfigDict(extra="forbid")

    format: DataFormat
    value: Any

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ValueData:
        fmt, raw = self.format, self.value
        context = info.context if isinstance(info.context, dict) else {}
        limit = int(context.get(VALUE_BYTES_CONTEXT, MAX_VALUE_BYTES))
        if fmt in ("string", "base64", "hex"):
            if not isinstance(raw, str):
                raise ValueError(f"data of format {fmt!r} must be a string")
            if len(raw) > MAX_VALUE_CHARS:
                raise ValueError(
                    f"data is {len(raw)} characters: the limit is {MAX_VALUE_CHARS} characters"
                )
        size = data_bytes(raw)
        if size > limit:
            raise ValueError(f"data is {size} bytes (UTF-8): the limit is {limit} bytes per value")
        if fmt == "base64":
            try:
                base64.b64decode(raw, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data is not valid base64: {exc}") from None
        elif fmt == "hex":
            try:
                bytes.fromhex(raw)
            except ValueError:
                raise ValueError("data is not valid hex") from None
        elif fmt == "admin":
            self.value = AdminRef.model_validate(raw).model_dump()
        elif fmt == "vlist":
            if not isinstance(raw, list):
                raise ValueError("data of format 'vlist' must be a list of {handle, index}")
            self.value = [HandleRef.model_validate(item).model_dump() for item in raw]
        elif fmt == "site":
            if not isinstance(raw, dict) or not isinstance(raw.get("servers"), list):
                raise ValueError("data of format 'site' must be an object with a 'servers' list")
        elif fmt == "key" and not isinstance(raw, dict | str):
            raise ValueError("data of format 'key' must be a JWK object or a string")
        return self


class HandleValue(BaseModel):
    """One value of a handle record."""

    model_config = ConfigDict(extra="ignore")

    index: int = Field(ge=1, le=2**31 - 1)
    type: str = Field(min_length=0, max_length=255)
    data: ValueData
    ttl: int | str = DEFAULT_TTL
    timestamp: str | None = None
    permissions: str | None = Field(default=None, pattern=r"^[01]{4}$")

    @field_validator("index", mode="before")
    @classmethod
    def _strict_index(cls, raw: Any) -> Any:
        # Reject 1.5 and True; accept "3" as pyhandle-era clients send strings.
        return _no_bool_or_float(raw)

    @field_validator("type")
    @classmethod
    def _printable_type(cls, vtype: str) -> str:
        bad = next((c for c in vtype if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
        if bad is not None:
            raise ValueError(
                f"type contains control character {bad!r}: a type is printable text "
                "such as URL or TRACE.INPUT"
            )
        return vtype

    @field_validator("data", mode="before")
    @classmethod
    def _bare_string(cls, raw: Any) -> Any:
        # PUT bodies may give data as a bare string (PROTOCOL.md).
        if isinstance(raw, str):
            return {"format": "string", "value": raw}
        return raw

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl_not_bool(cls, raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError("ttl must be seconds (an integer) or an ISO-8601 expiry time")
        return raw

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, ttl: int | str) -> int | str:
        if isinstance(ttl, int):
            if ttl < 0:
                raise ValueError("ttl must be zero or more seconds")
            return ttl
        try:
            datetime.fromisoformat(ttl.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                "ttl must be seconds (an integer) or an ISO-8601 expiry time"
            ) from None
        return ttl

    def to_wire(self) -> dict[str, Any]:
        """The value as the REST API shows it."""
        out: dict[str, Any] = {
            "index": self.index,
            "type": self.type,
            "data": {"format": self.data.format, "value": self.data.value},
            "ttl": self.ttl,
            "timestamp": self.timestamp or now_iso(),
        }
        if self.permissions and self.permissions != PUBLIC_READ_PERMISSIONS:
            out["permissions"] = self.permissions
        return out


def data_bytes(raw: Any) -> int:
    """UTF-8 bytes of a value's data: the string itself, else its compact JSON."""
    if isinstance(raw, str):
        return len(raw.encode("utf-8", "surrogatepass"))
    try:
        text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return 0  # not JSON at all: the format checks refuse it
    return len(text.encode("utf-8", "surrogatepass"))


def parse_values(
    raw: Any,
    *,
    max_values: int = MAX_VALUES_PER_RECORD,
    max_value_bytes: int = MAX_VALUE_BYTES,
) -> list[HandleValue]:
    """Validate a list of wire values; every problem is reported in one InvalidValue."""
    if not isinstance(raw, list):
        raise InvalidValue("'values' must be a list of {index, type, data} objects")
    if len(raw) > max_values:
        raise InvalidValue(
            f"{len(raw)} values in one record: the limit is {max_values} values per record"
        )
    context = {VALUE_BYTES_CONTEXT: max_value_bytes}
    values: list[HandleValue] = []
    problems: list[str] = []
    for position, item in enumerate(raw):
        try:
            values.append(HandleValue.model_validate(item, context=context))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "value"
                problems.append(f"values[{position}].{where}: {err['msg']}")
    if problems:
        raise InvalidValue("invalid value: " + "; ".join(problems[:10]), problems=problems)
    seen: set[int] = set()
    for value in values:
        if value.index in seen:
            raise InvalidValue(f"index {value.index} appears more than once: indexes are unique")
        seen.add(value.index)
    return values


def value_is_public(value: dict[str, Any]) -> bool:
    """True if an anonymous reader may see this wire value (publicRead bit)."""
    perms = value.get("permissions")
    return not perms or perms[2] == "1"


def admin_refs(values: list[dict[str, Any]]) -> list[AdminRef]:
    """The HS_ADMIN entries of a record."""
    out = []
    for value in values:
        if value.get("type") == "HS_ADMIN" and value["data"].get("format") == "admin":
            out.append(AdminRef.model_validate(value["data"]["value"]))
    return out
