"""The trace walk as a pure object: what to fetch next, what came back, what is missing.

No I/O and no clock: the fetch loop in clients/tracer.py asks `take()` for everything
queued, fetches it however it likes and reports each answer with `found()` or `failed()`,
in any order and while other fetches are still out, so one slow node never holds up the
rest. Each identifier is fetched once (visited by case-folded key): cycles end, and
diamonds (two products sharing one lot) give one record with several incoming edges.

Answers may arrive in any order, so a record can first be reached along a longer path;
when a shorter one turns up its depth is lowered and passed on to what it links to (and
anything the depth limit had cut is fetched after all). The results are told in one
canonical order, breadth-first from the root along the edges in index order, so the
same records always come out in the same order with the same depth and parent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from idcore.errors import InvalidHandle
from idcore.identifier import NA_PREFIX, fold, from_scan
from idcore.stages import TRACE_PREFIX

Reason = Literal[
    "not_found",  # responseCode 100: no record under this identifier
    "invalid",  # responseCode 102: the edge does not hold a valid identifier
    "error",  # the node answered with another Handle error
    "unreachable",  # no connection to the node
    "timeout",  # the node did not answer within the request timeout
    "deadline",  # the trace's overall deadline passed first
    "depth_limit",  # beyond max_depth: not fetched
    "record_limit",  # beyond max_records: not fetched
]
REASONS: tuple[Reason, ...] = (
    "not_found",
    "invalid",
    "error",
    "unreachable",
    "timeout",
    "deadline",
    "depth_limit",
    "record_limit",
)
HopKind = Literal["record", "enterprise"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One identifier to fetch, and how the walk reached it."""

    handle: str
    depth: int
    parent: str | None = None
    relation: str | None = None
    kind: HopKind = "record"

    @property
    def key(self) -> str:
        """Case-folded identity of the hop (enterprise look-ups live in their own space)."""
        return ("E:" if self.kind == "enterprise" else "") + fold(self.handle)


@dataclass(frozen=True, slots=True)
class Edge:
    """A `TRACE.*` value: `source` names `target` through `relation`."""

    source: str
    target: str
    relation: str


@dataclass(frozen=True, slots=True)
class Failure:
    """An identifier the walk could not turn into a record, and why."""

    hop: Hop
    reason: Reason
    message: str
    response_code: int | None = None
    node: str | None = None
    elapsed: float = 0.0


@dataclass(slots=True)
class Visit:
    """A fetched record: its values, the node that served it, the round and time it took."""

    hop: Hop
    values: list[dict[str, Any]]
    node: str
    wave: int
    elapsed: float = 0.0
    edges: list[Edge] = field(default_factory=list)


def trace_edges(values: Iterable[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(relation, raw target) of every `TRACE.*` value, in index order."""
    found = [
        (int(v.get("index", 0)), str(v["type"]), (v.get("data") or {}).get("value"))
        for v in values
        if str(v.get("type", "")).startswith(TRACE_PREFIX)
    ]
    return [(relation, target) for _, relation, target in sorted(found, key=lambda t: t[0])]


def enterprise_prefix(handle: str) -> str | None:
    """The enterprise prefix that owns a handle (`88.168.1/X` → `88.168.1`); None for 0.NA/…."""
    prefix = handle.split("/", 1)[0]
    return None if fold(prefix) == fold(NA_PREFIX) else prefix


class Walk:
    """A walk over `TRACE.*` edges with depth and size limits, answers in any order."""

    def __init__(
        self,
        root: str,
        *,
        max_depth: int = 16,
        max_records: int = 500,
        enterprises: bool = False,
    ) -> None:
        if max_depth < 0:
            raise ValueError(f"max_depth must be 0 or more, not {max_depth}")
        if max_records < 1:
            raise ValueError(f"max_records must be 1 or more, not {max_records}")
        self.root = root
        self.max_depth = max_depth
        self.max_records = max_records
        self.enterprises = enterprises
        self.wave = 0
        self.visits: dict[str, Visit] = {}
        self.failures: dict[str, Failure] = {}
        self.enterprise_records: dict[str, Visit] = {}
        self._depth: dict[str, int] = {}  # key → shortest depth known so far
        self._queue: list[Hop] = []
        self._in_flight: dict[str, Hop] = {}
        self._round: dict[str, int] = {}  # key → the fetch round that requested it
        self._enterprise_seen: set[str] = set()
        self._scheduled = 0
        self._enqueue(Hop(root, 0))

    # -- what to fetch -------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True when nothing is queued and nothing is in flight."""
        return not self._queue and not self._in_flight

    @property
    def in_flight(self) -> list[Hop]:
        """Hops handed out by `take()` and not yet answered."""
        return list(self._in_flight.values())

    def take(self) -> list[Hop]:
        """Everything queued, now in flight (one fetch round); empty if nothing is queued."""
        if not self._queue:
            return []
        batch, self._queue = self._queue, []
        self.wave += 1
        for hop in batch:
            self._in_flight[hop.key] = hop
            self._round[hop.key] = self.wave
        return batch

    # -- what came back ------------------------------------------------------------

    def found(
        self, hop: Hop, values: Sequence[dict[str, Any]], node: str, elapsed: float = 0.0
    ) -> None:
        """Record a fetched hop; queue the identifiers its `TRACE.*` values name."""
        wave = self._land(hop)
        visit = Visit(hop, list(values), node, wave, elapsed)
        if hop.kind == "enterprise":
            self.enterprise_records[hop.handle] = visit
            return
        self.visits[hop.key] = visit
        for relation, raw in trace_edges(values):
            target = self._target(hop, relation, raw)
            if target is None:
                continue
            # As written; the results spell each identifier the canonical way.
            visit.edges.append(Edge(hop.handle, target, relation))
        self._follow(hop.key)

    def failed(
        self,
        hop: Hop,
        reason: Reason,
        message: str,
        *,
        response_code: int | None = None,
        node: str | None = None,
        elapsed: float = 0.0,
    ) -> None:
        """Record a hop that could not be fetched."""
        self._land(hop)
        if hop.kind == "record":
            self.failures[hop.key] = Failure(hop, reason, message, response_code, node, elapsed)

    def abandon(self, reason: Reason = "deadline", message: str = "") -> list[Hop]:
        """Give up on everything queued or in flight (the deadline passed); returns them."""
        left = [*self._in_flight.values(), *self._queue]
        self._in_flight.clear()
        self._queue = []
        for hop in left:
            if hop.kind == "record":
                why = message or f"not resolved before the trace's {reason}"
                self.failures[hop.key] = Failure(hop, reason, why)
        return left

    # -- results, in canonical order -----------------------------------------------

    @property
    def edges(self) -> list[Edge]:
        """Every `TRACE.*` value of every fetched record, once, in canonical order."""
        order, hops = self._canonical()
        return [e for key in order if key in self.visits for e in self._edges_of(key, hops)]

    @property
    def records(self) -> list[Visit]:
        """Fetched records breadth-first from the root; depth and parent along shortest paths."""
        order, hops = self._canonical()
        return [
            replace(self.visits[k], hop=hops[k], edges=self._edges_of(k, hops))
            for k in order
            if k in self.visits
        ]

    @property
    def errors(self) -> list[Failure]:
        """Every identifier missing from the trace, in canonical order (invalid edges last)."""
        order, hops = self._canonical()
        found = [replace(self.failures[k], hop=hops[k]) for k in order if k in self.failures]
        return found + [f for k, f in self.failures.items() if k not in hops]

    @property
    def complete(self) -> bool:
        """True when every identifier reached was fetched."""
        return self.done and not self.failures

    # -- internals -----------------------------------------------------------------

    def _land(self, hop: Hop) -> int:
        if self._in_flight.pop(hop.key, None) is None:
            raise KeyError(f"{hop.handle!r} is not in flight: take() hands out what to fetch")
        return self._round[hop.key]

    def _edges_of(self, key: str, hops: dict[str, Hop]) -> list[Edge]:
        """A fetched record's edges, spelled canonically, each once."""
        out: list[Edge] = []
        for edge in self.visits[key].edges:
            spelled = Edge(hops[key].handle, hops[fold(edge.target)].handle, edge.relation)
            if spelled not in out:
                out.append(spelled)
        return out

    def _follow(self, key: str) -> None:
        """Discover (or relax) every target of a fetched record at its current depth."""
        depth = self._depth[key]
        source = self.visits[key]
        for edge in source.edges:
            self._discover(Hop(edge.target, depth + 1, source.hop.handle, edge.relation))

    def _target(self, hop: Hop, relation: str, raw: Any) -> str | None:
        text = raw if isinstance(raw, str) else None
        try:
            if text is None:
                raise InvalidHandle(f"{relation} holds {type(raw).__name__}, not an identifier")
            return from_scan(text).text
        except InvalidHandle as exc:
            shown = str(raw)[:120]
            key = f"invalid:{hop.key}:{relation}:{shown}"
            if key not in self.failures:
                self.failures[key] = Failure(
                    Hop(shown, hop.depth + 1, hop.handle, relation),
                    "invalid",
                    f"{relation} of {hop.handle} is not an identifier: {exc.message}",
                    response_code=102,
                )
            return None

    def _discover(self, hop: Hop) -> None:
        key = hop.key
        known = self._depth.get(key)
        if known is not None:
            if hop.depth < known:
                self._relax(hop)
            return
        self._depth[key] = hop.depth
        self._admit(hop)

    def _admit(self, hop: Hop) -> None:
        """Queue a newly reached hop, or note which limit keeps it out."""
        if hop.depth > self.max_depth:
            self.failures[hop.key] = Failure(
                hop, "depth_limit", f"deeper than the depth limit {self.max_depth}: not fetched"
            )
        elif self._scheduled >= self.max_records:
            self.failures[hop.key] = Failure(
                hop, "record_limit", f"beyond the limit of {self.max_records} records: not fetched"
            )
        else:
            self._enqueue(hop)

    def _relax(self, hop: Hop) -> None:
        """A shorter path to a record already reached: lower its depth and pass it on."""
        key = hop.key
        self._depth[key] = hop.depth
        cut = self.failures.get(key)
        if cut is not None and cut.reason == "depth_limit":
            del self.failures[key]
            self._admit(hop)
        elif key in self.visits:
            self._follow(key)
        # Queued or in flight: `found()` discovers its targets at the new depth on arrival.

    def _enqueue(self, hop: Hop) -> None:
        self._depth.setdefault(hop.key, hop.depth)
        self._scheduled += 1
        self._queue.append(hop)
        prefix = enterprise_prefix(hop.handle) if self.enterprises else None
        if prefix is not None and fold(prefix) not in self._enterprise_seen:
            self._enterprise_seen.add(fold(prefix))
            self._queue.append(Hop(f"{NA_PREFIX}/{prefix}", hop.depth, kind="enterprise"))

    def _canonical(self) -> tuple[list[str], dict[str, Hop]]:
        """Breadth-first order from the root over fetched records; each key's canonical hop."""
        root_key = fold(self.root)
        hops = {root_key: Hop(self.root, 0)}
        order = [root_key]
        todo = deque([root_key])
        while todo:
            key = todo.popleft()
            visit = self.visits.get(key)
            if visit is None:
                continue
            depth = hops[key].depth
            for edge in visit.edges:
                target = fold(edge.target)
                if target not in hops:
                    hops[target] = Hop(edge.target, depth + 1, hops[key].handle, edge.relation)
                    order.append(target)
                    todo.append(target)
        return order, hops
