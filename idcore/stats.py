"""Statistics every node publishes: registrations and resolutions, at /api/stats and /metrics.

Counts live in prometheus-client counters. A node process under gunicorn runs in
prometheus-client's multiprocess mode (`prepare_multiprocess` before the app is built):
every worker writes its counts to files in the node's own directory and a read sums
them, so `/api/stats` and `/metrics` agree whichever worker answers. Rates per second
come from samples of those sums, taken once a second by a thread in each process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, values
from prometheus_client import generate_latest as prometheus_text
from prometheus_client.multiprocess import MultiProcessCollector

from idcore.errors import InvalidHandle, ProtocolError
from idcore.handle_api import EXTENSION as RECORDS
from idcore.identifier import NA_PREFIX, fold, parse_handle
from idcore.logs import RequestInfo, log_request, mark_started, request_facts
from idcore.settings import NodeSettings
from idcore.web import json_response

STATS = "idr.stats"
AGGREGATE = "idr.stats.aggregate"
"""Extension a top-level node sets: turns its own snapshot into the whole hierarchy's."""

WINDOW = 10.0  # seconds a per-second rate averages over
SAMPLE_EVERY = 1.0
INVENTORY_TTL = 5.0  # seconds the record count and hosted prefixes are reused
MAX_PREFIXES = 500  # distinct prefix labels per process; the rest count as "(other)"
OTHER, INVALID = "(other)", "(invalid)"
KINDS = ("registrations", "resolutions")
_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Totals = dict[tuple[str, str], float]
"""(kind, prefix) → cumulative count; kind is a KINDS entry or `resolutions:<result>`."""


def metrics_dir(settings: NodeSettings) -> Path:
    """Where a node process keeps its multiprocess metric files: under its data directory."""
    return Path(settings.data_dir) / "metrics" / settings.node


def prepare_multiprocess(settings: NodeSettings) -> Path:
    """Switch this process to multiprocess metrics in a fresh per-node directory.

    Call once in a node's entry point before `create_app`, never in a test process that
    builds several apps: it empties the directory (counters start at zero with the node).
    """
    path = metrics_dir(settings)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus-client picks its value class when first imported, which happened
        # before this process knew its node; pick again now that the directory is known.
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return path


def _multiprocess_path() -> str | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path) and getattr(values.ValueClass, "_multiprocess", False):
        return path
    return None


RESOLVED = "idr_resolved"
"""`g` key a multi-get sets: (identifier, responseCode, HTTP status) of each item."""


def _result(code: int | None, status: int) -> str:
    if code in (1, 200):
        return "ok"
    if code == 100:
        return "not_found"
    if code == 303 or status == 300:
        return "referral"
    return "error"


class NodeStats:
    """One node's counters, their Prometheus exposition and their per-second rates."""

    def __init__(self, node: str, multiprocess_path: str | None = None) -> None:
        self.node = node
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.resolutions = Counter(
            "idr_resolutions",
            "Resolution requests answered, by the identifier's prefix and the result",
            ["node", "prefix", "result"],
            registry=self.registry,
        )
        self.registrations = Counter(
            "idr_registrations",
            "Identifiers created, by prefix",
            ["node", "prefix"],
            registry=self.registry,
        )
        self.requests = Counter(
            "idr_http_requests",
            "HTTP requests answered, by route and status",
            ["node", "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "idr_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            ["node", "route"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.multiprocess_path = multiprocess_path
        if multiprocess_path is not None:
            self.read_registry = CollectorRegistry()
            MultiProcessCollector(self.read_registry, path=multiprocess_path)  # type: ignore[no-untyped-call]
        else:
            self.read_registry = self.registry
        self._prefixes: set[str] = set()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._history: deque[tuple[float, Totals]] = deque(
            maxlen=int(2 * WINDOW / SAMPLE_EVERY) + 5
        )
        self._lock = threading.Lock()
        self._sampler_pid = 0

    # -- counting ----------------------------------------------------------------

    def _label(self, prefix: str) -> str:
        folded = fold(prefix)
        if folded in self._prefixes:
            return folded
        with self._lock:
            if len(self._prefixes) >= MAX_PREFIXES:
                return OTHER
            self._prefixes.add(folded)
        return folded

    def _prefix_of(self, identifier: str | None) -> str:
        if not identifier:
            return INVALID
        try:
            handle = parse_handle(identifier)
        except InvalidHandle:
            return INVALID
        return self._label(handle.prefix)

    def record(
        self,
        info: RequestInfo,
        created: list[str],
        resolved: Sequence[tuple[str, int, int | None]] = (),
    ) -> None:
        """Count one finished request.

        `created` names identifiers it registered; `resolved` holds (identifier,
        responseCode, HTTP status) of each identifier a multi-get resolved.
        """
        route = info.route or "(unmatched)"
        self._child(self.requests, self.node, info.method, route, str(info.status)).inc()
        self._child(self.duration, self.node, route).observe(info.duration_ms / 1000)
        if info.method == "GET" and route.startswith("/api/handles/"):
            resolved = [(info.identifier or "", info.response_code or 0, info.status)]
        for identifier, code, status in resolved:
            result = _result(code, status or 0)
            prefix = self._prefix_of(identifier)
            self._child(self.resolutions, self.node, prefix, result).inc()
        for identifier in created:
            self._child(self.registrations, self.node, self._prefix_of(identifier)).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """The series of `metric` with `labels`, looked up once and then kept.

        `labels()` validates and locks on every call, a good part of a fast request.
        The label sets are bounded: routes, statuses and at most MAX_PREFIXES prefixes.
        """
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- reading -----------------------------------------------------------------

    def totals(self) -> Totals:
        """Cumulative counts of this node, summed over its worker processes."""
        out: Totals = {}
        for metric in self.read_registry.collect():
            if metric.name not in ("idr_resolutions", "idr_registrations"):
                continue
            kind = metric.name.removeprefix("idr_")
            for sample in metric.samples:
                if not sample.name.endswith("_total") or sample.labels.get("node") != self.node:
                    continue
                prefix = sample.labels["prefix"]
                out[(kind, prefix)] = out.get((kind, prefix), 0.0) + sample.value
                if kind == "resolutions":
                    key = (f"resolutions:{sample.labels['result']}", prefix)
                    out[key] = out.get(key, 0.0) + sample.value
        return out

    def sample(self) -> None:
        """Remember the current totals for per-second rates."""
        self._history.append((time.monotonic(), self.totals()))

    def ensure_sampler(self) -> None:
        """Start this process's sampling thread (again after a fork: threads do not survive)."""
        pid = os.getpid()
        if self._sampler_pid == pid:
            return
        with self._lock:
            if self._sampler_pid == pid:
                return
            self._sampler_pid = pid
            self._history.clear()
            self.sample()
            ref = weakref.ref(self)
            threading.Thread(
                target=_sample_loop, args=(ref,), name="idr-stats", daemon=True
            ).start()

    def rates(self, now_totals: Totals) -> tuple[Totals, float]:
        """Per-second rates over about the last WINDOW seconds, and the span they cover."""
        now = time.monotonic()
        reference: tuple[float, Totals] | None = None
        for stamp, totals in reversed(self._history):
            reference = (stamp, totals)
            if stamp <= now - WINDOW:
                break
        if reference is None:
            return {}, 0.0
        span = now - reference[0]
        base = reference[1]
        # Within a node's first second, counts are per that second, not blown up by 1/span.
        divisor = max(span, SAMPLE_EVERY)
        return {k: (v - base.get(k, 0.0)) / divisor for k, v in now_totals.items()}, span


def _sample_loop(ref: weakref.ReferenceType[NodeStats]) -> None:
    pid = os.getpid()
    while True:
        time.sleep(SAMPLE_EVERY)
        stats = ref()
        if stats is None or stats._sampler_pid != pid:
            return
        # A sampler must never take the node down: a failed sample is tried again next tick.
        with contextlib.suppress(Exception):
            stats.sample()
        del stats


# -- the snapshot --------------------------------------------------------------------


def _counts(totals: Totals, rates: Totals, prefix: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        keys = [k for k in totals if k[0] == kind and (prefix is None or k[1] == prefix)]
        out[kind] = int(sum(totals[k] for k in keys))
        out[f"{kind}_per_second"] = round(sum(rates.get(k, 0.0) for k in keys), 3)
    return out


def _by_result(totals: Totals) -> dict[str, int]:
    out: dict[str, int] = {}
    for (kind, _prefix), value in totals.items():
        if kind.startswith("resolutions:"):
            result = kind.split(":", 1)[1]
            out[result] = out.get(result, 0) + int(value)
    return dict(sorted(out.items()))


class _Inventory:
    """The node's record count and hosted prefixes, reused for a few seconds (a count may scan)."""

    def __init__(self) -> None:
        self._value: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._value
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._lock:
            store = current_app.extensions[RECORDS].store
            try:
                _total, handles = store.list_handles(NA_PREFIX, 0, 200)
                value = {
                    "records": store.count(),
                    "hosted_prefixes": [h.split("/", 1)[1] for h in handles],
                }
            except Exception as exc:  # the store is down: say so instead of failing stats
                value = {"records": None, "hosted_prefixes": [], "store_error": type(exc).__name__}
            self._value = (now + INVENTORY_TTL, value)
            return value


def node_snapshot() -> dict[str, Any]:
    """The running node's statistics: cumulative, per second, per prefix."""
    stats: NodeStats = current_app.extensions[STATS]
    info = current_app.config["IDR_NODE"]
    totals = stats.totals()
    rates, span = stats.rates(totals)
    prefixes = sorted({p for (kind, p) in totals if kind in KINDS})
    body: dict[str, Any] = {
        "scope": "node",
        **info,
        "title": current_app.config.get("IDR_TITLE", ""),
        "up": True,
        "started": datetime.fromtimestamp(stats.started, UTC).isoformat(timespec="seconds"),
        "uptime": round(time.time() - stats.started, 3),
        "window": round(span, 3),
        **_counts(totals, rates),
        "resolutions_by_result": _by_result(totals),
        **current_app.extensions[f"{STATS}.inventory"].get(),
        "prefixes": [{"prefix": p, **_counts(totals, rates, p)} for p in prefixes],
    }
    return body


# -- Flask wiring ----------------------------------------------------------------------


def _created(info: RequestInfo, response: Response) -> list[str]:
    """Identifiers a request registered: a PUT that answered 201, or a batch's created items."""
    if info.method == "PUT" and info.status == 201 and info.identifier:
        return [info.identifier]
    if info.method == "POST" and (info.route or "").startswith("/api/batch/") and info.status < 300:
        return _batch_created(response)
    return []


def _batch_created(response: Response) -> list[str]:
    """Items a batch answer reports as created (`responseCode` 1, message "created")."""
    body = response.get_json(silent=True)
    items = body.get("results") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    return [
        item["handle"]
        for item in items
        if isinstance(item, dict)
        and item.get("responseCode") == 1
        and item.get("message") == "created"
        and isinstance(item.get("handle"), str)
    ]


def stats_blueprint() -> Blueprint:
    """`GET /api/stats` and `GET /metrics`."""
    bp = Blueprint("stats", __name__)

    @bp.get("/api/stats")
    def stats() -> Response:
        scope = request.args.get("scope", "hierarchy")
        if scope not in ("node", "hierarchy"):
            raise ProtocolError(f"scope={scope!r}: use scope=node or scope=hierarchy")
        snapshot = node_snapshot()
        aggregate: Callable[[dict[str, Any]], dict[str, Any]] | None = current_app.extensions.get(
            AGGREGATE
        )
        if scope == "hierarchy" and aggregate is not None:
            return json_response(aggregate(snapshot))
        return json_response(snapshot)

    @bp.get("/metrics")
    def metrics() -> Response:
        stats: NodeStats = current_app.extensions[STATS]
        return Response(prometheus_text(stats.read_registry), mimetype=CONTENT_TYPE_LATEST)

    return bp


def init_app(app: Flask) -> NodeStats:
    """Count, time and log every request of a node; serve /api/stats and /metrics."""
    node = app.config["IDR_NODE"]["node"]
    settings: NodeSettings | None = app.extensions.get("idr.settings")
    stats = NodeStats(node, _multiprocess_path())
    app.extensions[STATS] = stats
    app.extensions[f"{STATS}.inventory"] = _Inventory()
    if settings is not None:
        try:
            app.config["IDR_TITLE"] = settings.spec().title
        except KeyError:
            app.config["IDR_TITLE"] = ""

    def _start() -> None:
        mark_started()
        stats.ensure_sampler()

    # First of all before-request hooks: one that answers early (an injected fault) is
    # still timed, and every answer, early or not, passes the after-request hook below.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _finish(response: Response) -> Response:
        info = request_facts(node, request, response)
        stats.record(info, _created(info, response), g.get(RESOLVED, ()))
        if settings is None or settings.access_log:
            log_request(info)
        return response

    app.register_blueprint(stats_blueprint())
    return stats
