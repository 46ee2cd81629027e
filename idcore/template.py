"""Data templates (DESIGN.md §5): what items a record of a kind carries, and the check on write.

A template such as ``furniture.product@1`` names its items: code, Chinese and English
name, type, whether it is required, and limits. A record names its template at index
1001 (type ``IDIS.TEMPLATE``); every value at index 2000+ that is not a ``TRACE.*``
edge is an item whose value type is the item code. Templates are identifiers too: a
node keeps each one as ``<node prefix>/TEMPLATE.<name>`` holding the template JSON in
one ``IDIS.TEMPLATE.DEF`` value.

Everything here is pure (no store, no Flask) except `TemplateRegistry`, which reads
template records from a node's store.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from idcore.errors import InvalidHandle, InvalidValue
from idcore.identifier import fold, parse_handle
from idcore.stages import (
    ADMIN_INDEX,
    FIRST_ITEM_INDEX,
    TEMPLATE_INDEX,
    TEMPLATE_TYPE,
    TRACE_PREFIX,
    Stage,
)
from idcore.store import Record, Store
from idcore.values import ALL_PERMISSIONS, MAX_VALUE_CHARS

ItemType = Literal["string", "number", "date", "datetime", "url", "reference", "image"]

DEF_TYPE = "IDIS.TEMPLATE.DEF"
DEF_INDEX = 10
DESC_INDEX = 2
HANDLE_STEM = "TEMPLATE."
HANDLE_STEM_FOLDED = "/TEMPLATE."
MAX_ITEMS = 200

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){0,4}@[1-9][0-9]{0,5}$")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"^data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+$", re.IGNORECASE)
# Value types an item code may not take: they mean something else in a record.
_RESERVED_CODES = re.compile(r"^(URL|EMAIL|DESC|HS_.*|IDIS.*|TRACE.*)$", re.IGNORECASE)


def is_template_name(name: str) -> bool:
    """True for `family@version`, e.g. `furniture.product@1` or `battery.cell_lot@2`."""
    return bool(_NAME.fullmatch(name))


def check_template_name(name: str) -> str:
    """Return the name, or raise InvalidValue naming the expected form."""
    if not isinstance(name, str) or not is_template_name(name):
        raise InvalidValue(
            f"template name {str(name)[:80]!r} is not of the form <family>@<version>, "
            "e.g. furniture.product@1 (lower-case letters, digits, '_', dot-separated)"
        )
    return name


class TemplateItem(BaseModel):
    """One item of a template: a value at index 2000+ whose type is `code`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    type: ItemType = "string"
    required: bool = False
    max_length: int | None = Field(default=None, ge=1, le=MAX_VALUE_CHARS)
    min: float | None = None
    max: float | None = None
    unit: str | None = Field(default=None, max_length=20)

    @field_validator("code")
    @classmethod
    def _code(cls, code: str) -> str:
        if not _CODE.fullmatch(code):
            raise ValueError(
                "item code must start with a letter and hold only letters, digits and '_' "
                "(at most 64 characters)"
            )
        if _RESERVED_CODES.fullmatch(code):
            raise ValueError(f"item code {code!r} is a reserved value type")
        return code

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, bound: float | None) -> float | None:
        if bound is not None and not math.isfinite(bound):
            raise ValueError("number limits must be finite")
        return bound

    @model_validator(mode="after")
    def _limits(self) -> TemplateItem:
        if (self.min is not None or self.max is not None) and self.type != "number":
            raise ValueError(f"min/max apply to number items, not to {self.type!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is greater than max {self.max:g}")
        return self


class Template(BaseModel):
    """A data template: named items with types, required flags and limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title_zh: str = Field(min_length=1, max_length=100)
    title_en: str = Field(min_length=1, max_length=100)
    stage: Stage = "other"
    description: str = Field(default="", max_length=1000)
    items: list[TemplateItem] = Field(min_length=1, max_length=MAX_ITEMS)
    _codes: dict[str, TemplateItem] = PrivateAttr(default_factory=dict)
    _required: tuple[TemplateItem, ...] = PrivateAttr(default=())
    _plain: dict[str, int] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not is_template_name(name):
            raise ValueError(
                "name must be <family>@<version>, e.g. furniture.product@1 "
                "(lower-case letters, digits, '_', dot-separated)"
            )
        return name

    @model_validator(mode="after")
    def _unique_codes(self) -> Template:
        seen: set[str] = set()
        for item in self.items:
            if item.code in seen:
                raise ValueError(f"item code {item.code!r} appears more than once")
            seen.add(item.code)
        return self

    @property
    def family(self) -> str:
        """`furniture.product@1` → `furniture.product`."""
        return self.name.split("@", 1)[0]

    @property
    def version(self) -> int:
        """`furniture.product@1` → 1."""
        return int(self.name.split("@", 1)[1])

    def item(self, code: str) -> TemplateItem | None:
        """The item with this code, or None."""
        return self.by_code().get(code)

    def model_post_init(self, context: Any, /) -> None:
        """Index the items by code once (frozen: they never change)."""
        self._codes = {item.code: item for item in self.items}
        self._required = tuple(item for item in self.items if item.required)
        self._plain = {
            item.code: item.max_length if item.max_length is not None else MAX_VALUE_CHARS
            for item in self.items
            if item.type == "string"
        }

    # Private attributes read through pydantic's __getattr__ cost microseconds each, and a
    # batch checks thousands of records: these read the private dict directly.

    def required_items(self) -> tuple[TemplateItem, ...]:
        """The items a record must carry."""
        required: tuple[TemplateItem, ...] = self._private["_required"]
        return required

    def by_code(self) -> dict[str, TemplateItem]:
        """Items by code."""
        codes: dict[str, TemplateItem] = self._private["_codes"]
        return codes

    def text_limits(self) -> dict[str, int]:
        """Characters each `string` item may hold, by code (MAX_VALUE_CHARS if it sets none)."""
        limits: dict[str, int] = self._private["_plain"]
        return limits

    @property
    def _private(self) -> dict[str, Any]:
        private = self.__pydantic_private__
        assert private is not None  # set by model_post_init
        return private

    def to_json(self) -> dict[str, Any]:
        """The template as the API shows it (None limits left out)."""
        return self.model_dump(exclude_none=True)


def parse_template(raw: Any) -> Template:
    """Validate a template definition; every problem is reported in one InvalidValue (202)."""
    try:
        return Template.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "template"
            problems.append(f"{where}: {err['msg']}")
        raise InvalidValue(
            "invalid template: " + "; ".join(problems[:10]), problems=problems
        ) from None


# --- checking one value against one item ------------------------------------------------


def check_item(item: TemplateItem, value: Any) -> str | None:
    """Why `value` (the data.value of the item's value) breaks the item, or None if it fits."""
    if not isinstance(value, str):
        return f"item {item.code!r} must be a string value (data format 'string')"
    if item.max_length is not None and len(value) > item.max_length:
        return f"item {item.code!r} is {len(value)} characters: the limit is {item.max_length}"
    if value == "":
        return f"required item {item.code!r} is empty" if item.required else None
    kind = item.type
    if kind == "string":
        return None
    if kind == "number":
        return _check_number(item, value)
    if kind == "date":
        if not _DATE.fullmatch(value):
            return f"item {item.code!r} is not a date (YYYY-MM-DD): {value[:40]!r}"
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"item {item.code!r} is not a valid calendar date: {value!r}"
        return None
    if kind == "datetime":
        if not _DATETIME.fullmatch(value):
            return (
                f"item {item.code!r} is not a date-time (ISO 8601, e.g. 2024-05-01T08:30:00Z): "
                f"{value[:40]!r}"
            )
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"item {item.code!r} is not a valid date-time: {value!r}"
        return None
    if kind == "url":
        if not _URL.fullmatch(value):
            return f"item {item.code!r} is not an http(s) URL: {value[:80]!r}"
        return None
    if kind == "image":
        if not (_URL.fullmatch(value) or _DATA_IMAGE.fullmatch(value)):
            return (
                f"item {item.code!r} is not an image reference (an http(s) URL or a "
                f"data:image/...;base64 URI): {value[:80]!r}"
            )
        return None
    # reference: another identifier, prefix/suffix
    return _check_reference(f"item {item.code!r}", value)


def _check_number(item: TemplateItem, value: str) -> str | None:
    if not _NUMBER.fullmatch(value):
        return f"item {item.code!r} is not a number: {value[:40]!r}"
    number = float(value)
    if not math.isfinite(number):
        return f"item {item.code!r} is out of range: {value[:40]!r}"
    if item.min is not None and number < item.min:
        return f"item {item.code!r} is {value}: the minimum is {item.min:g}"
    if item.max is not None and number > item.max:
        return f"item {item.code!r} is {value}: the maximum is {item.max:g}"
    return None


def _check_reference(what: str, value: str) -> str | None:
    why = _reference_problem(value)
    return f"{what} {why}" if why else None


@functools.lru_cache(maxsize=65536)
def _reference_problem(value: str) -> str | None:
    # Records share lots and profiles, so a batch checks the same references again and again.
    if "/" not in value:
        return f"is not an identifier (prefix/suffix, e.g. 88.169.1/BOARD-1): {value!r}"
    try:
        parse_handle(value)
    except InvalidHandle as exc:
        return f"is not a valid identifier: {exc.message}"
    return None


# --- checking a whole record ---------------------------------------------------------------


def _problem(index: int | None, item: str | None, message: str) -> dict[str, Any]:
    return {"index": index, "item": item, "message": message}


def template_name_of(values: Sequence[dict[str, Any]]) -> str | None:
    """The template a record names at index 1001 (data.value), or None if it names none."""
    for value in values:
        if value.get("index") == TEMPLATE_INDEX:
            data = value.get("data") or {}
            raw = data.get("value") if isinstance(data, dict) else None
            return raw if isinstance(raw, str) else ""
    return None


def record_problems(template: Template, values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every way the record's values break the template (empty when it follows it)."""
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    by_code = template.by_code()
    text_limits = template.text_limits()
    for value in values:
        index = int(value["index"])
        vtype = str(value.get("type", ""))
        data = value.get("data") or {}
        text = data.get("value")
        if vtype.startswith(TRACE_PREFIX):
            if data.get("format") != "string" or not isinstance(text, str):
                problems.append(
                    _problem(index, None, f"{vtype} at index {index} must be a string identifier")
                )
            else:
                why = _reference_problem(text)
                if why:
                    problems.append(_problem(index, None, f"{vtype} at index {index} {why}"))
            continue
        if index < FIRST_ITEM_INDEX:
            continue
        item = by_code.get(vtype)
        if item is None:
            problems.append(
                _problem(
                    index,
                    vtype,
                    f"item {vtype!r} at index {index} is not in template {template.name}",
                )
            )
            continue
        if vtype in seen:
            problems.append(
                _problem(
                    index,
                    vtype,
                    f"item {vtype!r} appears twice (indexes {seen[vtype]} and {index})",
                )
            )
            continue
        seen[vtype] = index
        if data.get("format") != "string":
            problems.append(
                _problem(index, vtype, f"item {vtype!r} must have data format 'string'")
            )
            continue
        # Non-empty text within a string item's limit is the common case, in which
        # check_item finds nothing wrong: skip the call.
        limit = text_limits.get(vtype)
        if limit is not None and type(text) is str and 0 < len(text) <= limit:
            continue
        why = check_item(item, text)
        if why:
            problems.append(_problem(index, vtype, why))
    for item in template.required_items():
        if item.code not in seen:
            problems.append(
                _problem(
                    None, item.code, f"required item {item.code!r} ({item.name_en}) is missing"
                )
            )
    return problems


Lookup = Callable[[str], "Template | None"]


def check_record(record: Record, lookup: Lookup, node_prefix: str | None = None) -> None:
    """Raise InvalidValue (202) listing every problem if the record breaks its template.

    Records without a value at index 1001 are plain Handle records and pass. A template
    record (`<node prefix>/TEMPLATE.<name>`) must hold a valid definition of that name.
    """
    if (
        node_prefix is not None
        and HANDLE_STEM_FOLDED in fold(record.handle)
        and is_template_handle(record.handle, node_prefix)
    ):
        template_from_record(record)
        return
    values = record.values
    problems: list[dict[str, Any]] = []
    tvalue: dict[str, Any] | None = None
    for value in values:  # one pass: find index 1001, and IDIS.TEMPLATE anywhere else
        if value.get("index") == TEMPLATE_INDEX:
            tvalue = value
        elif value.get("type") == TEMPLATE_TYPE:
            problems.append(
                _problem(
                    int(value["index"]),
                    None,
                    f"{TEMPLATE_TYPE} belongs at index {TEMPLATE_INDEX}, not {value['index']}",
                )
            )
    if tvalue is None:
        if problems:
            raise _invalid(record.handle, None, problems)
        return
    name = template_name_of([tvalue]) or ""
    if tvalue.get("type") != TEMPLATE_TYPE:
        problems.append(
            _problem(
                TEMPLATE_INDEX,
                None,
                f"index {TEMPLATE_INDEX} is reserved for the {TEMPLATE_TYPE} value "
                f"(found type {tvalue.get('type')!r})",
            )
        )
        raise _invalid(record.handle, None, problems)
    if not is_template_name(name):
        problems.append(
            _problem(
                TEMPLATE_INDEX,
                None,
                f"{name[:80]!r} is not a template name (<family>@<version>, "
                "e.g. furniture.product@1)",
            )
        )
        raise _invalid(record.handle, None, problems)
    template = lookup(name)
    if template is None:
        raise InvalidValue(
            f"{record.handle!r} names unknown template {name!r}: register it first with "
            f"PUT /api/templates/{name}",
            handle=record.handle,
            problems=[*problems, _problem(TEMPLATE_INDEX, None, f"unknown template {name!r}")],
        )
    problems.extend(record_problems(template, values))
    if problems:
        raise _invalid(record.handle, template.name, problems)


def _invalid(handle: str, template: str | None, problems: list[dict[str, Any]]) -> InvalidValue:
    shown = "; ".join(p["message"] for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    where = f"does not follow template {template}" if template else "has invalid values"
    return InvalidValue(
        f"{handle!r} {where}: {len(problems)} problem(s): {shown}{more}",
        handle=handle,
        problems=problems,
    )


# --- template records ----------------------------------------------------------------------


def template_handle(node_prefix: str, name: str) -> str:
    """The identifier a node keeps a template under: `88.168/TEMPLATE.furniture.product@1`."""
    return f"{node_prefix}/{HANDLE_STEM}{name}"


def is_template_handle(handle: str, node_prefix: str) -> bool:
    """True for `<node prefix>/TEMPLATE.<anything>`."""
    prefix, _, suffix = handle.partition("/")
    return fold(prefix) == fold(node_prefix) and fold(suffix).startswith(HANDLE_STEM)


def dumps_template(template: Template) -> str:
    """The compact JSON kept in the IDIS.TEMPLATE.DEF value."""
    return json.dumps(template.to_json(), ensure_ascii=False, separators=(",", ":"))


def template_record(node_prefix: str, template: Template, stamp: str) -> Record:
    """The record holding a template: DESC, the definition and the node admin's HS_ADMIN."""

    def value(index: int, vtype: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"index": index, "type": vtype, "data": data, "ttl": 86400, "timestamp": stamp}

    return Record(
        template_handle(node_prefix, template.name),
        [
            value(
                DESC_INDEX,
                "DESC",
                {
                    "format": "string",
                    "value": f"data template {template.name}: {template.title_zh} / "
                    f"{template.title_en}",
                },
            ),
            value(DEF_INDEX, DEF_TYPE, {"format": "string", "value": dumps_template(template)}),
            value(
                ADMIN_INDEX,
                "HS_ADMIN",
                {
                    "format": "admin",
                    "value": {
                        "handle": f"{node_prefix}/ADMIN",
                        "index": 300,
                        "permissions": ALL_PERMISSIONS,
                    },
                },
            ),
        ],
    )


def definition_text(record: Record) -> str | None:
    """The raw JSON of the record's IDIS.TEMPLATE.DEF value, if it has exactly one."""
    found = [v for v in record.values if v.get("type") == DEF_TYPE]
    if len(found) != 1:
        return None
    raw = (found[0].get("data") or {}).get("value")
    return raw if isinstance(raw, str) else None


def template_from_record(record: Record) -> Template:
    """Parse the template a template record holds; InvalidValue if it holds none or a bad one."""
    raw = definition_text(record)
    if raw is None:
        raise InvalidValue(
            f"{record.handle!r} is a template record: it needs exactly one {DEF_TYPE} value "
            "holding the template JSON",
            handle=record.handle,
        )
    return _parse_definition(record.handle, raw)


def _parse_definition(handle: str, raw: str) -> Template:
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidValue(
            f"{handle!r}: the {DEF_TYPE} value is not JSON: {exc.msg}", handle=handle
        ) from None
    template = parse_template(body)
    suffix = handle.partition("/")[2]
    if fold(suffix) != fold(HANDLE_STEM + template.name):
        raise InvalidValue(
            f"{handle!r} holds template {template.name!r}: the handle must be "
            f"<node prefix>/{HANDLE_STEM}{template.name}",
            handle=handle,
        )
    return template


class TemplateRegistry:
    """The templates one node keeps in its store, and the record check wired into writes.

    Every lookup reads the template record (one store GET), so a template changed by
    another gunicorn worker or process is seen at once; the parsed form is cached by the
    definition's exact text, so JSON parsing and model validation happen once per version.
    Inside `session()` (a batch) each name is read once for the whole session.
    """

    def __init__(self, store: Store, node_prefix: str, cache_size: int = 256) -> None:
        self.store = store
        self.node_prefix = node_prefix
        self._parsed: OrderedDict[str, Template] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._local = threading.local()

    def handle_of(self, name: str) -> str:
        """The template record's identifier."""
        return template_handle(self.node_prefix, name)

    def key_of(self, name: str) -> str:
        """The store key of the template record."""
        return fold(self.handle_of(name))

    def parse_record(self, record: Record) -> Template:
        """The template held by a template record, parsed once per definition text."""
        raw = definition_text(record)
        if raw is None:
            return template_from_record(record)  # raises with the reason
        with self._lock:
            cached = self._parsed.get(raw)
            if cached is not None:
                self._parsed.move_to_end(raw)
                return cached
        template = _parse_definition(record.handle, raw)
        with self._lock:
            self._parsed[raw] = template
            while len(self._parsed) > self._cache_size:
                self._parsed.popitem(last=False)
        return template

    def lookup(self, name: str) -> Template | None:
        """The template registered under this name on this node, or None."""
        memo: dict[str, Template | None] | None = getattr(self._local, "memo", None)
        if memo is not None and name in memo:
            return memo[name]
        record = self.store.get(self.key_of(name))
        found: Template | None = None
        if record is not None:
            try:
                found = self.parse_record(record)
            except InvalidValue:
                found = None
        if memo is not None:
            memo[name] = found
        return found

    def all(self) -> list[Template]:
        """Every template of this node, sorted by name."""
        _, handles = self.store.list_handles(self.node_prefix)
        keys = [fold(h) for h in handles if is_template_handle(h, self.node_prefix)]
        out = []
        for record in self.store.get_many(keys):
            if record is None:
                continue
            with contextlib.suppress(InvalidValue):
                out.append(self.parse_record(record))
        return sorted(out, key=lambda t: t.name)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Within the block, each template is read from the store at most once (this thread)."""
        outer = getattr(self._local, "memo", None)
        if outer is not None:
            yield
            return
        self._local.memo = {}
        try:
            yield
        finally:
            self._local.memo = None

    def validate(self, record: Record) -> None:
        """RecordService's validator: InvalidValue (202) if the record breaks its template."""
        check_record(record, self.lookup, self.node_prefix)
