"""Fault injection as a pure engine: rules, matching, seeded decisions (after WireMock, Toxiproxy).

A rule matches a request by method, route pattern (`fnmatch` on the path) and optionally
the identifier prefix the request is about. Each rule owns a `random.Random(seed)`, drawn
once per request it matches, so the same rules over the same request sequence inject the
same faults. The emulator controls (`/_emulator/...`) are never faulted.
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from idcore.codes import ResponseCode
from idcore.errors import InvalidHandle, ProtocolError
from idcore.identifier import Handle, is_within, parse_handle, validate_prefix

FaultKind = Literal["latency", "error", "drop", "outage"]
CONTROL_PREFIX = "/_emulator"
DROP_ENVIRON_KEY = "idr.drop_connection"
"""WSGI environ key of a callable a server may offer to drop the request's connection (the
in-process adapter does, to raise `requests.ConnectionError` as a real socket would)."""

MAX_LATENCY_MS = 120_000.0


class FaultRule(BaseModel):
    """One fault: what it matches, what it does, how often, from which seed (wire: camelCase)."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )

    kind: FaultKind
    id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    route: str = Field("*", min_length=1, description="fnmatch pattern on the request path")
    methods: list[str] = Field(default_factory=list, description="empty: every method")
    prefix: str | None = Field(None, description="only requests about identifiers under it")
    probability: float = Field(1.0, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, description="absent: derived from the rule itself")
    latency_ms: float = Field(0.0, ge=0.0, le=MAX_LATENCY_MS)
    latency_max_ms: float | None = Field(None, ge=0.0, le=MAX_LATENCY_MS)
    response_code: int | None = Field(None, ge=1, le=65535)
    http_status: int | None = Field(None, ge=200, le=599)
    message: str | None = Field(None, max_length=500)
    drop: bool = Field(False, description="outage: drop connections instead of answering 503")
    limit: int | None = Field(None, ge=1, description="inject at most this many times")

    @model_validator(mode="after")
    def _consistent(self) -> FaultRule:
        if self.latency_max_ms is not None and self.latency_max_ms < self.latency_ms:
            raise ValueError(
                f"latencyMaxMs ({self.latency_max_ms:g}) must be at least latencyMs "
                f"({self.latency_ms:g})"
            )
        if self.kind == "latency" and self.latency_ms == 0 and not self.latency_max_ms:
            raise ValueError("a latency fault needs latencyMs (and optionally latencyMaxMs)")
        if self.prefix is not None:
            validate_prefix(self.prefix)
        return self

    @property
    def effective_seed(self) -> int:
        """The seed in use: the configured one, else a stable digest of the rule."""
        if self.seed is not None:
            return self.seed
        canon = self.model_dump(mode="json", exclude={"id", "seed"})
        return zlib.crc32(json.dumps(canon, sort_keys=True).encode())

    @property
    def answer(self) -> tuple[int, int]:
        """(responseCode, HTTP status) of an error or outage answer."""
        default = ResponseCode.SERVER_TOO_BUSY if self.kind == "outage" else ResponseCode.ERROR
        code = self.response_code if self.response_code is not None else int(default)
        if self.http_status is not None:
            return code, self.http_status
        try:
            return code, ResponseCode(code).http_status
        except ValueError:
            return code, 500

    def matches(self, method: str, path: str, handle: Handle | None) -> bool:
        """True if this rule applies to the request (controls are excluded by the engine)."""
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        if not fnmatchcase(path, self.route):
            return False
        if self.prefix is None:
            return True
        return handle is not None and is_within(handle.homed_prefix, self.prefix)

    def to_json(self) -> dict[str, Any]:
        """The wire form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one request: wait, then answer an error or drop the connection (or go on)."""

    latency: float = 0.0
    action: Literal["error", "drop"] | None = None
    response_code: int = 0
    http_status: int = 0
    message: str = ""
    fired: tuple[str, ...] = ()
    kind: FaultKind = "latency"

    @property
    def label(self) -> str:
        """A short name for the journal: the kind of the rule that decided the answer."""
        return self.kind


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One injected fault, in the order they happened (the determinism log)."""

    seq: int
    rule: str
    kind: str
    method: str
    path: str
    handle: str | None
    latency_ms: float
    action: str | None

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {
            "seq": self.seq,
            "rule": self.rule,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "handle": self.handle,
            "latencyMs": round(self.latency_ms, 3),
            "action": self.action,
        }


@dataclass
class _Active:
    rule: FaultRule
    id: str
    rng: random.Random
    matched: int = 0
    injected: int = 0

    def to_json(self) -> dict[str, Any]:
        body = self.rule.to_json()
        body.update(
            id=self.id, seed=self.rule.effective_seed, matched=self.matched, injected=self.injected
        )
        return body


class FaultEngine:
    """The fault rules of one node process and the log of what they injected (thread-safe)."""

    def __init__(self, log_size: int = 10_000) -> None:
        self._rules: list[_Active] = []
        self._log: deque[FaultEvent] = deque(maxlen=log_size)
        self._seq = 0
        self._next_id = 1
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # -- configuration -------------------------------------------------------------

    def set(self, rules: Iterable[FaultRule]) -> list[dict[str, Any]]:
        """Replace every rule; seeds restart, so the same set repeats the same faults."""
        with self._lock:
            fresh: list[_Active] = []
            for position, rule in enumerate(rules, start=1):
                fresh.append(_activate(rule, f"f{position}", fresh))
            self._rules = fresh
            # Requests still waiting out an injected latency go on at once.
            self._wake.set()
            self._wake = threading.Event()
            self._log.clear()
            self._seq = 0
            self._next_id = len(fresh) + 1
            return [a.to_json() for a in self._rules]

    def add(self, rule: FaultRule) -> dict[str, Any]:
        """Add one rule after the others."""
        with self._lock:
            active = _activate(rule, f"f{self._next_id}", self._rules)
            self._next_id += 1
            self._rules.append(active)
            return active.to_json()

    def remove(self, rule_id: str) -> bool:
        """Remove one rule by id; False if there is none."""
        with self._lock:
            kept = [a for a in self._rules if a.id != rule_id]
            found = len(kept) != len(self._rules)
            self._rules = kept
            return found

    def clear(self) -> None:
        """No faults, empty log."""
        self.set([])

    def wait(self, seconds: float) -> None:
        """Wait out an injected latency; cut short when the rules are set again or cleared."""
        self._wake.wait(seconds)

    def rules(self) -> list[dict[str, Any]]:
        """Every rule with its effective seed and counters."""
        with self._lock:
            return [a.to_json() for a in self._rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    # -- decisions -----------------------------------------------------------------

    def decide(self, method: str, path: str, handle: Handle | None = None) -> Decision | None:
        """The fault for one request, or None; each matching rule draws from its own stream."""
        if path.startswith(CONTROL_PREFIX) or not self._rules:
            return None
        with self._lock:
            self._seq += 1
            latency = 0.0
            chosen: _Active | None = None
            fired: list[str] = []
            for active in self._rules:
                rule = active.rule
                if not rule.matches(method, path, handle):
                    continue
                if rule.limit is not None and active.injected >= rule.limit:
                    continue
                active.matched += 1
                if active.rng.random() >= rule.probability:
                    continue
                delay = _draw_latency(rule, active.rng)
                terminal = rule.kind != "latency"
                if terminal and chosen is not None:
                    continue  # an earlier rule already decides the answer
                active.injected += 1
                latency += delay
                fired.append(active.id)
                if terminal:
                    chosen = active
                self._log.append(
                    FaultEvent(
                        self._seq,
                        active.id,
                        rule.kind,
                        method,
                        path,
                        handle.text if handle else None,
                        delay * 1000,
                        _action_of(rule),
                    )
                )
            if not fired:
                return None
            return _decision(latency, chosen.rule if chosen else None, tuple(fired))

    def log(self, limit: int | None = None) -> list[FaultEvent]:
        """Injected faults, oldest first (the last `limit` of them)."""
        with self._lock:
            events = list(self._log)
        return events[-limit:] if limit else events


def _activate(rule: FaultRule, default_id: str, existing: Sequence[_Active]) -> _Active:
    rule_id = rule.id or default_id
    taken = {a.id for a in existing}
    if rule.id and rule.id in taken:
        raise ProtocolError(f"a fault with id {rule.id!r} exists already: choose another id")
    copy = 1
    while rule_id in taken:
        copy += 1
        rule_id = f"{default_id}-{copy}"
    return _Active(rule, rule_id, random.Random(rule.effective_seed))


def _draw_latency(rule: FaultRule, rng: random.Random) -> float:
    if rule.latency_max_ms is not None and rule.latency_max_ms > rule.latency_ms:
        return rng.uniform(rule.latency_ms, rule.latency_max_ms) / 1000
    return rule.latency_ms / 1000


def _action_of(rule: FaultRule) -> Literal["error", "drop"] | None:
    if rule.kind == "drop" or (rule.kind == "outage" and rule.drop):
        return "drop"
    if rule.kind in ("error", "outage"):
        return "error"
    return None


def _decision(latency: float, rule: FaultRule | None, fired: tuple[str, ...]) -> Decision:
    if rule is None:
        return Decision(latency=latency, fired=fired)
    action = _action_of(rule)
    code, status = rule.answer
    default = (
        "node unavailable (injected outage)"
        if rule.kind == "outage"
        else f"injected fault: responseCode {code}"
    )
    return Decision(latency, action, code, status, rule.message or default, fired, rule.kind)


def parse_rules(body: Any) -> list[FaultRule]:
    """Rules from a request body: one rule, a list, or `{"faults": [...]}`; ProtocolError if bad."""
    if isinstance(body, dict) and "faults" in body:
        body = body["faults"]
    items: Sequence[Any] = body if isinstance(body, list) else [body]
    rules = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise ProtocolError(f"fault #{position + 1} must be a JSON object, not {item!r}")
        try:
            rules.append(FaultRule.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            )
            raise ProtocolError(f"fault #{position + 1} is invalid: {problems}") from None
    return rules


def handle_in_path(path: str) -> Handle | None:
    """The identifier a request path is about (`/api/<what>/<handle>`), or None."""
    parts = path.split("/", 3)
    if len(parts) < 4 or parts[1] != "api" or not parts[3]:
        return None
    try:
        return parse_handle(parts[3])
    except InvalidHandle:
        return None
