"""What a trace found: records, edges, what is missing, nodes and enterprises, as JSON.

`Trace.to_json()` is the stable schema "idr.trace/1" documented in
clients/trace_schema.json; the readers below turn Handle values into template items,
event times and names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, cast

from clients.trust import UNKNOWN, UNTRUSTED, Verdict, summarize
from clients.walk import Edge, Reason
from idcore.stages import (
    FIRST_ITEM_INDEX,
    STAGE_ORDER,
    TRACE_PREFIX,
    Stage,
    template_family,
)

SCHEMA = "idr.trace/1"

_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
# Items that name a record, best first, when it has no `name` item.
_NAME_CODES = ("name", "product_name", "title", "step", "report_kind", "species", "kind")
# Items that say how long something stays valid are not when it happened.
_NOT_EVENTS = ("until", "expir", "valid", "deadline")


# -- results -------------------------------------------------------------------------------


@dataclass
class TraceRecord:
    """One record of a trace, with what the trace knows about it."""

    handle: str
    node: str
    enterprise: str | None
    template: str | None
    stage: Stage
    items: dict[str, Any]
    url: str | None
    time: str | None
    depth: int
    parent: str | None
    relation: str | None
    edges: list[Edge]
    elapsed: float
    wave: int
    values: list[dict[str, Any]] = field(default_factory=list, repr=False)
    trust: Verdict | None = None  # set when the trace checks signatures (clients/trust.py)

    def title(self, lang: str = "en") -> str:
        """A human name: the `name` item (the right half of 'zh / en'), else template or suffix."""
        name = name_item(self.items, lang)
        if name:
            return name
        family = template_family(self.template)
        first = next(iter(self.items.values()), None)
        if family and isinstance(first, str) and 0 < len(first) <= 30:
            return f"{family} {first}"  # e.g. `furniture.batch 2024-0512`
        return family or self.handle.split("/", 1)[-1]

    @property
    def moment(self) -> datetime | None:
        """The record's event time as an aware datetime, when it has one."""
        return parse_time(self.time)

    def to_json(self) -> dict[str, Any]:
        """The record in the trace JSON."""
        out = {
            "handle": self.handle,
            "node": self.node,
            "enterprise": self.enterprise,
            "template": self.template,
            "stage": self.stage,
            "items": self.items,
            "url": self.url,
            "time": self.time,
            "depth": self.depth,
            "parent": self.parent,
            "relation": self.relation,
            "edges": [{"to": e.target, "relation": e.relation} for e in self.edges],
            "wave": self.wave,
            "elapsedMs": _ms(self.elapsed),
        }
        if self.trust is not None:
            out["trust"] = self.trust.to_json()
        return out


@dataclass
class TraceError:
    """An identifier missing from the trace and why (a reason of clients.walk.REASONS)."""

    handle: str
    reason: Reason
    message: str
    response_code: int | None
    node: str | None
    depth: int
    parent: str | None
    relation: str | None
    elapsed: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The error in the trace JSON."""
        return {
            "handle": self.handle,
            "reason": self.reason,
            "responseCode": self.response_code,
            "node": self.node,
            "message": self.message,
            "depth": self.depth,
            "parent": self.parent,
            "relation": self.relation,
            "elapsedMs": _ms(self.elapsed),
        }


@dataclass
class NodeInfo:
    """A node that served records: its URL and, when known, its name and title."""

    url: str
    name: str | None = None
    title: str | None = None
    prefix: str | None = None

    @property
    def label(self) -> str:
        """The name if known, else the URL."""
        return self.name or self.url


@dataclass
class EnterpriseInfo:
    """An enterprise prefix seen in the trace, with its names when its record said them."""

    prefix: str
    name: str | None = None
    name_en: str | None = None
    node: str | None = None

    def label(self, lang: str = "en") -> str:
        """The name in the language asked for, else the other one, else the prefix."""
        first, second = (self.name_en, self.name) if lang == "en" else (self.name, self.name_en)
        return first or second or self.prefix


@dataclass
class Trace:
    """The result of a trace: records, edges, what is missing, and how long it took."""

    root: str
    records: list[TraceRecord]
    edges: list[Edge]
    errors: list[TraceError]
    nodes: dict[str, NodeInfo]
    enterprises: dict[str, EnterpriseInfo]
    elapsed: float
    waves: int
    requests: int
    limits: dict[str, float]

    @property
    def complete(self) -> bool:
        """True when every identifier reached is in `records`."""
        return not self.errors and bool(self.records)

    @property
    def root_record(self) -> TraceRecord | None:
        """The record traced from, if it was fetched."""
        return self.records[0] if self.records and self.records[0].depth == 0 else None

    @property
    def root_error(self) -> TraceError | None:
        """Why the root itself is missing (then the trace is empty)."""
        return next((e for e in self.errors if e.depth == 0), None)

    @property
    def verified(self) -> bool:
        """True when the records' signatures were checked."""
        return any(r.trust is not None for r in self.records)

    def trust_summary(self) -> dict[str, Any]:
        """Counts of trusted, untrusted and unknown records, and the verdict on them all."""
        counts: dict[str, Any] = summarize([r.trust for r in self.records])
        if counts[UNTRUSTED]:
            counts["verdict"] = UNTRUSTED
        elif counts[UNKNOWN] or not self.records:
            counts["verdict"] = UNKNOWN
        else:
            counts["verdict"] = "trusted"
        return counts

    def record(self, handle: str) -> TraceRecord | None:
        """The record of a handle (case-insensitive), if traced."""
        wanted = handle.upper()
        return next((r for r in self.records if r.handle.upper() == wanted), None)

    def by_stage(self) -> list[tuple[Stage, list[TraceRecord]]]:
        """Records grouped by stage in STAGE_ORDER (raw material first), empty stages left out."""
        groups = [(s, [r for r in self.records if r.stage == s]) for s in STAGE_ORDER]
        return [(s, rs) for s, rs in groups if rs]

    def timeline(self) -> list[TraceRecord]:
        """Records with an event time, oldest first (ties keep the stage order).

        Enterprise profiles are left out: a company's founding date is not a product event.
        """
        timed = [
            (r.moment, r) for r in self.records if r.moment is not None and r.stage != "enterprise"
        ]
        timed.sort(key=lambda t: (t[0], STAGE_ORDER.index(t[1].stage), t[1].handle))
        return [r for _, r in timed]

    def enterprise_of(self, record: TraceRecord) -> EnterpriseInfo | None:
        """What is known about the enterprise that owns a record."""
        return self.enterprises.get(record.enterprise or "")

    def label_nodes(self, known: Iterable[NodeInfo]) -> None:
        """Attach names and titles to the nodes that served records (matched by URL)."""
        for info in known:
            node = self.nodes.get(info.url.rstrip("/"))
            if node is not None:
                node.name = node.name or info.name
                node.title = node.title or info.title
                node.prefix = node.prefix or info.prefix

    def to_json(self) -> dict[str, Any]:
        """The trace as JSON: the stable schema clients/trace_schema.json documents."""
        counts: dict[str, int] = {}
        for rec in self.records:
            counts[rec.node] = counts.get(rec.node, 0) + 1
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "root": self.root,
            "complete": self.complete,
            "records": [r.to_json() for r in self.records],
            "edges": [
                {"from": e.source, "to": e.target, "relation": e.relation} for e in self.edges
            ],
            "errors": [e.to_json() for e in self.errors],
            "nodes": [
                {
                    "url": n.url,
                    "name": n.name,
                    "title": n.title,
                    "prefix": n.prefix,
                    "records": counts.get(n.url, 0),
                }
                for n in self.nodes.values()
            ],
            "enterprises": [
                {"prefix": e.prefix, "name": e.name, "nameEn": e.name_en, "node": e.node}
                for e in self.enterprises.values()
            ],
            "stats": {
                "records": len(self.records),
                "errors": len(self.errors),
                "nodes": len(self.nodes),
                "waves": self.waves,
                "requests": self.requests,
                "maxDepth": max((r.depth for r in self.records), default=0),
                "elapsedMs": _ms(self.elapsed),
            },
            "limits": {
                "maxDepth": int(self.limits["max_depth"]),
                "maxRecords": int(self.limits["max_records"]),
                "deadline": self.limits["deadline"],
            },
        }
        if self.verified:
            out["trust"] = self.trust_summary()
        return out


# -- reading records -----------------------------------------------------------------------


def first_data(values: Sequence[dict[str, Any]], vtype: str) -> str | None:
    """The string data of the first value of a type."""
    for value in values:
        if value.get("type") == vtype:
            data = (value.get("data") or {}).get("value")
            return data if isinstance(data, str) else None
    return None


def record_items(values: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Template items of a record: values at index 2000+ (not edges), item code → value."""
    items: dict[str, Any] = {}
    for value in sorted(values, key=lambda v: int(v.get("index", 0))):
        vtype = str(value.get("type", ""))
        if int(value.get("index", 0)) < FIRST_ITEM_INDEX or vtype.startswith(TRACE_PREFIX):
            continue
        if vtype and vtype not in items:
            items[vtype] = (value.get("data") or {}).get("value")
    return items


def parse_time(text: str | None) -> datetime | None:
    """An ISO date or date-time as an aware datetime (naive ones are taken as UTC)."""
    if not text or not _DATE.match(text.strip()):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def event_time(items: Mapping[str, Any]) -> str | None:
    """When the record's event happened: its earliest date item (not validity dates)."""
    best: tuple[datetime, str] | None = None
    for code, value in items.items():
        if not isinstance(value, str) or any(word in code.lower() for word in _NOT_EVENTS):
            continue
        moment = parse_time(value)
        if moment is not None and (best is None or moment < best[0]):
            best = (moment, value)
    return best[1] if best else None


def name_code(items: Mapping[str, Any]) -> str | None:
    """The item code a record's title comes from (`name`, `product_name`, ...), if any."""
    return next((c for c in _NAME_CODES if isinstance(items.get(c), str) and items[c]), None)


def name_item(items: Mapping[str, Any], lang: str) -> str | None:
    """A record's name in one language (the matching half of a bilingual 'zh / en' name)."""
    own = items.get("name_en") if lang == "en" else items.get("name_zh")
    if isinstance(own, str) and own:
        return own
    names = [items[c] for c in _NAME_CODES if isinstance(items.get(c), str) and items[c]]
    if not names:
        return None
    name = str(names[0])
    if " / " in name:
        zh, en = name.split(" / ", 1)
        return en if lang == "en" else zh
    return name


def enterprise_names(values: Sequence[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(Chinese, English) name of an enterprise from its prefix or profile record."""
    items = {str(v.get("type")): (v.get("data") or {}).get("value") for v in values}
    zh = items.get("enterprise_name") or items.get("name_zh") or items.get("name")
    en = items.get("enterprise_name_en") or items.get("name_en")
    desc = items.get("DESC")
    if (not zh or not en) and isinstance(desc, str) and " / " in desc:
        d_zh, d_en = desc.split(" / ", 1)
        zh, en = zh or d_zh, en or d_en
    return (zh if isinstance(zh, str) else None), (en if isinstance(en, str) else None)


def trace_schema() -> dict[str, Any]:
    """The JSON Schema of `Trace.to_json()` (clients/trace_schema.json)."""
    text = resources.files("clients").joinpath("trace_schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
