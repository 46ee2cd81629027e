"""The tracer: follow every `TRACE.*` value of a record across nodes, in parallel.

`run_trace(root, fetch)` drives the pure `Walk` (clients/walk.py) with any fetch function
`fetch(handle) -> (values, node)`: the client library resolves through the top-level
nodes (`trace()`), the top-level node fetches in-process from the secondary nodes
(resolver/trace_api.py). Everything the walk has queued is fetched at once, so a trace
costs about its longest chain of dependent hops; an overall deadline bounds it, and every
identifier that could not be fetched is named with its reason instead of failing the
whole trace. The result is a `Trace` (clients/trace_result.py).
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import requests
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectTimeout

from clients.resolver import DEFAULT_TOP_LEVEL, Resolver
from clients.trace_result import (
    EnterpriseInfo,
    NodeInfo,
    Trace,
    TraceError,
    TraceRecord,
    enterprise_names,
    event_time,
    first_data,
    name_item,
    record_items,
)
from clients.trust import Verdict, Verifier
from clients.walk import Failure, Hop, Reason, Visit, Walk, enterprise_prefix
from idcore.errors import (
    HandleError,
    HandleNotFound,
    InvalidHandle,
    NodeTimeout,
    TransportError,
)
from idcore.identifier import from_scan
from idcore.stages import TEMPLATE_TYPE, stage_of

DEFAULT_DEADLINE = 5.0
DEFAULT_MAX_DEPTH = 16
DEFAULT_MAX_RECORDS = 500

Fetch = Callable[[str], tuple[list[dict[str, Any]], str]]
"""Fetch one record: handle → (its public values, the node that served it)."""

Check = Callable[[str, list[dict[str, Any]]], Verdict]
"""Check one record's signature chain: (handle, values) → verdict (clients/trust.py)."""

Fetched = tuple[list[dict[str, Any]], str] | BaseException
"""One record of a batch: (its values, the node that served it), or why it failed."""


class BatchFetch(Protocol):
    """A fetch that takes several records at once, from one group (one node) each time."""

    def group(self, handle: str) -> str:
        """Which batch a handle can share: the same key, the same node."""
        ...

    def fetch_many(self, handles: list[str]) -> list[Fetched]:
        """Fetch records of one group, in order; raise only if none could be fetched."""
        ...


class Pending(Protocol):
    """A batch on its way (StartFetch.start_many): wait for its socket, then finish()."""

    expires_at: float
    """When (time.monotonic) its answer is late: then expire()."""

    def fileno(self) -> int | None:
        """The socket to wait on until it is readable; None: finish() at once."""
        ...

    def finish(self) -> list[Fetched]:
        """The records in order, as fetch_many gives them (raising as it does)."""
        ...

    def expire(self) -> list[Fetched]:
        """Give up on the answer (its connection is closed): what each record then gets."""
        ...


@runtime_checkable
class StartFetch(BatchFetch, Protocol):
    """A batch fetch whose requests can be sent now and read later, all on one thread."""

    def start_many(self, handles: list[str]) -> Pending:
        """Send the request for records of one group; raise only if it could not be sent."""
        ...


MAX_BATCH = 50


# -- the fetch loop ------------------------------------------------------------------------


@dataclass
class _Outcome:
    values: list[dict[str, Any]] | None = None
    node: str = ""
    error: BaseException | None = None
    elapsed: float = 0.0


def _timed(fetch: Fetch, handle: str) -> list[_Outcome]:
    began = time.monotonic()
    try:
        values, node = fetch(handle)
        return [_Outcome(values=values, node=node, elapsed=time.monotonic() - began)]
    except Exception as exc:  # every failure is reported per identifier, never raised
        return [_Outcome(error=exc, elapsed=time.monotonic() - began)]


def _timed_many(batch: BatchFetch, hops: list[Hop]) -> list[_Outcome]:
    began = time.monotonic()
    return _outcomes(lambda: batch.fetch_many([hop.handle for hop in hops]), hops, began)


def _outcomes(read: Callable[[], list[Fetched]], hops: list[Hop], began: float) -> list[_Outcome]:
    """The outcome of each hop of a batch, from what `read` gives (or raises)."""
    try:
        results = read()
    except Exception as exc:  # the whole batch failed: so did each of its records
        return [_Outcome(error=exc, elapsed=time.monotonic() - began) for _ in hops]
    elapsed = time.monotonic() - began
    if len(results) != len(hops):
        wrong = RuntimeError(f"a batch of {len(hops)} records came back with {len(results)}")
        return [_Outcome(error=wrong, elapsed=elapsed) for _ in hops]
    return [
        _Outcome(error=r, elapsed=elapsed)
        if isinstance(r, BaseException)
        else _Outcome(values=r[0], node=r[1], elapsed=elapsed)
        for r in results
    ]


def _grouped(hops: Sequence[Hop], batch: BatchFetch) -> list[list[Hop]]:
    """Hops that one request can fetch together, at most MAX_BATCH each."""
    groups: dict[str, list[Hop]] = {}
    for hop in hops:
        groups.setdefault(batch.group(hop.handle), []).append(hop)
    return [
        group[i : i + MAX_BATCH]
        for group in groups.values()
        for i in range(0, len(group), MAX_BATCH)
    ]


def run_trace(
    root: str,
    fetch: Fetch,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_records: int = DEFAULT_MAX_RECORDS,
    deadline: float = DEFAULT_DEADLINE,
    workers: int = 16,
    enterprises: bool = True,
    verify: Check | None = None,
    executor: Executor | None = None,
    batch: BatchFetch | None = None,
) -> Trace:
    """Trace from `root` with any fetch function; never raises for a missing record.

    Whatever the walk has queued is fetched at once, in parallel; each answer queues what it
    links to right away, so a trace costs about its longest chain of dependent hops and a
    slow node holds up only what lies behind it. A long-lived `executor` (a server's) is
    used instead of a pool of `workers` threads made for this trace. With `batch`, what
    is queued for one node at one moment is fetched in one request.
    """
    walk = Walk(root, max_depth=max_depth, max_records=max_records, enterprises=enterprises)
    began = time.monotonic()
    stop_at = began + deadline
    verdicts: dict[str, Verdict] = {}
    if isinstance(batch, StartFetch):
        asked = _walk_on_one_thread(walk, batch, stop_at, deadline, verify, verdicts)
        return _finished(walk, began, asked, deadline, verify, verdicts)
    asked = 0
    pending: dict[Future[list[_Outcome]], list[Hop]] = {}
    landed: list[tuple[str, list[dict[str, Any]]]] = []
    pool = executor or ThreadPoolExecutor(max(1, workers), thread_name_prefix="idr-trace")
    try:
        while True:
            taken = walk.take()
            asked += len(taken)
            if batch is None:
                for hop in taken:
                    pending[pool.submit(_timed, fetch, hop.handle)] = [hop]
            else:
                for hops in _grouped(taken, batch):
                    pending[pool.submit(_timed_many, batch, hops)] = hops
            if verify is not None:
                # While the next fetches are on their way: checking costs no wall time then.
                for handle, values in landed:
                    verdicts[handle] = verify(handle, values)
            landed.clear()
            if not pending:
                break
            remaining = stop_at - time.monotonic()
            if remaining > 0:
                wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
            # Land in request order (pending keeps it); the walk's result does not depend on it.
            for future in [f for f in pending if f.done()]:
                hops = pending.pop(future)
                for hop, outcome in zip(hops, future.result(), strict=True):
                    _land(walk, hop, outcome)
                    if outcome.values is not None and hop.kind == "record":
                        landed.append((hop.handle, outcome.values))
            if time.monotonic() >= stop_at and not walk.done:
                walk.abandon("deadline", _late(deadline))
                break
    finally:
        # Abandoned requests finish in the background; nobody waits for them.
        if executor is None:
            pool.shutdown(wait=False, cancel_futures=True)
        else:
            for future in pending:
                future.cancel()
    return _finished(walk, began, asked, deadline, verify, verdicts)


def _late(deadline: float) -> str:
    return f"not resolved within the trace deadline of {deadline}s"


def _finished(
    walk: Walk,
    began: float,
    asked: int,
    deadline: float,
    verify: Check | None,
    verdicts: dict[str, Verdict],
) -> Trace:
    """The trace of a finished walk, every record with its verdict (checked now if not yet)."""
    result = _build(walk, time.monotonic() - began, asked, deadline)
    if verify is not None:
        for rec in result.records:
            found = verdicts.get(rec.handle)
            rec.trust = found if found is not None else verify(rec.handle, rec.values)
    return result


def _walk_on_one_thread(
    walk: Walk,
    batch: StartFetch,
    stop_at: float,
    deadline: float,
    verify: Check | None,
    verdicts: dict[str, Verdict],
) -> int:
    """The fetch loop of run_trace on the calling thread alone; the number of hops asked.

    Every batch the walk queues is sent at once, and each answer is read when its socket
    turns readable: no thread hands answers to another under the interpreter lock (on
    a busy node that hand-off, both ways, cost about as much as the fetch itself).
    Signatures are checked while answers are on their way, one record at a time, and an
    answer that has arrived is always landed first.
    """
    asked = 0
    landed: list[tuple[str, list[dict[str, Any]]]] = []

    def land(hops: list[Hop], outcomes: list[_Outcome]) -> None:
        for hop, outcome in zip(hops, outcomes, strict=True):
            _land(walk, hop, outcome)
            if outcome.values is not None and hop.kind == "record":
                landed.append((hop.handle, outcome.values))

    with selectors.DefaultSelector() as selector:
        try:
            while True:
                taken = walk.take()
                asked += len(taken)
                answered = False
                for hops in _grouped(taken, batch):
                    began = time.monotonic()
                    try:
                        pending = batch.start_many([hop.handle for hop in hops])
                        fd = pending.fileno()
                    except Exception as exc:  # not sent: every record of it failed
                        elapsed = time.monotonic() - began
                        land(hops, [_Outcome(error=exc, elapsed=elapsed) for _ in hops])
                        answered = True
                        continue
                    if fd is None:
                        land(hops, _outcomes(pending.finish, hops, began))
                        answered = True
                    else:
                        selector.register(fd, selectors.EVENT_READ, (pending, hops, began))
                if answered:
                    continue  # what landed may have queued more: take it before waiting
                if not selector.get_map():
                    break
                while verify is not None and landed and not selector.select(0):
                    handle, values = landed.pop(0)
                    verdicts[handle] = verify(handle, values)
                waiting = [key.data for key in selector.get_map().values()]
                soonest = min(stop_at, *(pending.expires_at for pending, _, _ in waiting))
                events = selector.select(max(0.0, soonest - time.monotonic()))
                for key, _ in events:
                    pending, hops, began = key.data
                    selector.unregister(key.fileobj)
                    land(hops, _outcomes(pending.finish, hops, began))
                now = time.monotonic()
                for key in list(selector.get_map().values()):
                    pending, hops, began = key.data
                    if now >= pending.expires_at:
                        selector.unregister(key.fileobj)
                        land(hops, _outcomes(pending.expire, hops, began))
                if now >= stop_at and not walk.done:
                    walk.abandon("deadline", _late(deadline))
                    break
        finally:
            # Abandoned requests: their connections are closed, never read or reused.
            for key in list(selector.get_map().values()):
                key.data[0].expire()
    return asked


def _land(walk: Walk, hop: Hop, outcome: _Outcome) -> None:
    if outcome.values is not None:
        walk.found(hop, outcome.values, outcome.node, outcome.elapsed)
        return
    reason, code, node = _classify(outcome.error)
    message = getattr(outcome.error, "message", None) or str(outcome.error) or repr(outcome.error)
    walk.failed(hop, reason, message, response_code=code, node=node, elapsed=outcome.elapsed)


def _classify(error: BaseException | None) -> tuple[Reason, int | None, str | None]:
    if isinstance(error, TransportError):
        return ("timeout" if isinstance(error, NodeTimeout) else "unreachable"), None, error.url
    if isinstance(error, HandleNotFound):
        return "not_found", int(error.code), None
    if isinstance(error, InvalidHandle):
        return "invalid", int(error.code), None
    if isinstance(error, HandleError):
        return "error", int(error.code), None
    return "error", None, None


def _build(walk: Walk, elapsed: float, asked: int, deadline: float) -> Trace:
    records = [_record(v) for v in walk.records]
    canonical_edges = walk.edges
    nodes: dict[str, NodeInfo] = {}
    for rec in records:
        nodes.setdefault(rec.node, NodeInfo(rec.node))
    enterprises: dict[str, EnterpriseInfo] = {}
    for rec in records:
        if rec.enterprise and rec.enterprise not in enterprises:
            enterprises[rec.enterprise] = _enterprise(rec.enterprise, walk, records)
    errors = [_error(f) for f in walk.errors]
    return Trace(
        root=walk.root,
        records=records,
        edges=canonical_edges,
        errors=errors,
        nodes=nodes,
        enterprises=enterprises,
        elapsed=elapsed,
        waves=walk.wave,
        requests=asked,
        limits={
            "max_depth": walk.max_depth,
            "max_records": walk.max_records,
            "deadline": deadline,
        },
    )


def _record(visit: Visit) -> TraceRecord:
    values = visit.values
    template = first_data(values, TEMPLATE_TYPE)
    items = record_items(values)
    return TraceRecord(
        handle=visit.hop.handle,
        node=visit.node.rstrip("/"),
        enterprise=enterprise_prefix(visit.hop.handle),
        template=template,
        stage=stage_of(template, visit.hop.relation),
        items=items,
        url=first_data(values, "URL"),
        time=event_time(items),
        depth=visit.hop.depth,
        parent=visit.hop.parent,
        relation=visit.hop.relation,
        edges=list(visit.edges),
        elapsed=visit.elapsed,
        wave=visit.wave,
        values=values,
    )


def _error(failure: Failure) -> TraceError:
    hop = failure.hop
    return TraceError(
        handle=hop.handle,
        reason=failure.reason,
        message=failure.message,
        response_code=failure.response_code,
        node=failure.node,
        depth=hop.depth,
        parent=hop.parent,
        relation=hop.relation,
        elapsed=failure.elapsed,
    )


def _enterprise(prefix: str, walk: Walk, records: Sequence[TraceRecord]) -> EnterpriseInfo:
    info = EnterpriseInfo(prefix)
    visit = next(
        (v for h, v in walk.enterprise_records.items() if h.split("/", 1)[-1] == prefix), None
    )
    if visit is not None:
        info.node = visit.node.rstrip("/")
        info.name, info.name_en = enterprise_names(visit.values)
    if info.name is None and info.name_en is None:
        # Fall back on an enterprise profile record traced under the same prefix.
        for rec in records:
            if rec.enterprise == prefix and rec.stage == "enterprise":
                info.name, info.name_en = name_item(rec.items, "zh"), name_item(rec.items, "en")
                break
    return info


# -- the client library --------------------------------------------------------------------


class ResolverFetch:
    """A fetch function over a Resolver: the record's values and the node that served it."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def __call__(self, handle: str) -> tuple[list[dict[str, Any]], str]:
        """Resolve one handle."""
        record = self.resolver.resolve(handle)
        return record.values, record.served_by


class DeadlineAdapter(HTTPAdapter):
    """Clamps every request's timeout so that none outlives `stop_at` (monotonic clock).

    The resolver may ask several nodes for one identifier (referral, failover); through
    this adapter all of them end by the deadline, so nothing lingers after a trace.
    """

    def __init__(self, stop_at: float) -> None:
        super().__init__(pool_connections=16, pool_maxsize=64)
        self.stop_at = stop_at

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        """Send with the timeout cut to what is left before the deadline."""
        left = self.stop_at - time.monotonic()
        if left <= 0:
            raise ConnectTimeout("the trace deadline passed before this request", request=request)
        if isinstance(timeout, tuple):
            connect, read = timeout
            clamped: float | tuple[float, float] = (
                min(connect, left),
                left if read is None else min(read, left),
            )
        else:
            clamped = left if timeout is None else min(timeout, left)
        return super().send(
            request, stream=stream, timeout=clamped, verify=verify, cert=cert, proxies=proxies
        )


def deadline_session(stop_at: float) -> requests.Session:
    """A pooled session whose requests all end by `stop_at`."""
    session = requests.Session()
    adapter = DeadlineAdapter(stop_at)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def trace(
    identifier: str,
    resolver: Resolver | None = None,
    *,
    top: str | Sequence[str] = DEFAULT_TOP_LEVEL,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_records: int = DEFAULT_MAX_RECORDS,
    deadline: float = DEFAULT_DEADLINE,
    timeout: float = 3.0,
    workers: int = 16,
    enterprises: bool = True,
    fetch: Fetch | None = None,
    verifier: Verifier | None = None,
) -> Trace:
    """Trace an identifier (or scanned code) through the top-level nodes.

    Without a resolver, one is made in iterative mode: the top-level node refers each
    prefix to its secondary node, so every record names the node that really holds it.
    Raises InvalidHandle for a malformed identifier; anything missing is in `errors`.
    With a `verifier`, each record's `trust` holds its verdict.
    """
    root = from_scan(identifier).text
    own: Resolver | None = None
    if fetch is None:
        if resolver is None:
            # A little grace, so that the walk reports "deadline" rather than a timeout.
            session = deadline_session(time.monotonic() + deadline + 0.1)
            own = resolver = Resolver(top, mode="iterative", timeout=timeout, session=session)
        fetch = ResolverFetch(resolver)
    try:
        return run_trace(
            root,
            fetch,
            max_depth=max_depth,
            max_records=max_records,
            deadline=deadline,
            workers=workers,
            enterprises=enterprises,
            verify=verifier.check if verifier is not None else None,
        )
    finally:
        if own is not None:
            own.close()
