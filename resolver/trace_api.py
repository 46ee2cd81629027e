"""`GET /api/trace/<id>` on the top-level node: the whole trace in one request, for phones.

The trace runs in-process: each hop finds its secondary node in the prefix registry and
fetches through the node's Upstream (with its TTL cache), never by HTTP to ourselves.
It runs on the request's own thread: each node's share of what the walk has queued is one
multi-get, all sent at once and read as their answers arrive (NodeFetch.start_many).
Every record's signature is checked against the node's own key (the anchor clients pin):
each record of the answer carries its `trust` verdict.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from clients.trace_result import NodeInfo, Trace
from clients.tracer import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_RECORDS,
    Fetched,
    Pending,
    run_trace,
)
from clients.trust import Anchor, Verifier
from idcore.errors import HandleError, HandleNotFound, error_for_code
from idcore.identifier import Handle, fold, parse_handle
from idcore.records import RecordService
from idcore.trust_api import TRUST, NodeTrust
from idcore.web import json_response, query_float
from resolver.delegation import Delegation, Registry
from resolver.upstream import PendingMany, Upstream, UpstreamGatewayError, UpstreamTimeout

# What a caller may ask for at most: a trace must not tie up a node for long.
MAX_DEADLINE = 10.0
MAX_DEPTH = 64
MAX_RECORDS = 2000
VERIFIER = "idr.trust.verifier"


class NodeFetch:
    """Fetch records the way the top-level node resolves them, remembering which node served."""

    def __init__(self, app: Flask) -> None:
        self.registry: Registry = app.extensions["idr.registry"]
        self.upstream: Upstream = app.extensions["idr.upstream"]
        self.records: RecordService = app.extensions["idr.records"]
        self.own_url: str = app.config["IDR_NODE"]["url"]
        self.own_name: str = app.config["IDR_NODE"]["node"]
        self.own_prefix: str = app.config["IDR_NODE"]["prefix"]
        self.nodes: dict[str, NodeInfo] = {}
        self._lock = threading.Lock()
        self._homes: dict[tuple[str, bool], Delegation | None] = {}
        # The registry as of the trace's start: one read of its log position, not one per
        # prefix the trace meets.
        self._delegation: Callable[[Handle], Delegation | None] = self.registry.pinned()

    def __call__(self, text: str) -> tuple[list[dict[str, Any]], str]:
        """The public values of a record and the base URL of the node that holds it."""
        handle = parse_handle(text)
        found = self._home(handle)
        if found is None:
            return self.records.resolve(handle), self.own_url
        return self.upstream.fetch(found.base_url, handle), found.base_url

    def group(self, text: str) -> str:
        """The node a record lives on (records of one node are fetched together)."""
        try:
            found = self._home(parse_handle(text))
        except HandleError:
            return f"invalid {text}"
        return found.base_url if found is not None else self.own_url

    def fetch_many(self, texts: list[str]) -> list[Fetched]:
        """Records in order, each node's in one multi-get; each failure in its own place."""
        out, remote = self._split(texts)
        for base, items in remote.items():
            results = self.upstream.fetch_many(base, [h for _, h in items])
            out = _merged(out, items, results, base)
        return [r for r in out if r is not None]

    def start_many(self, texts: list[str]) -> Pending:
        """fetch_many, sent now and read when its socket is readable (clients/tracer.py).

        The records of one group: of this node (answered at once) or of one other node
        (one multi-get on its way); a mix of nodes is fetched at once instead.
        """
        out, remote = self._split(texts)
        if len(remote) > 1:
            return _Answered(self.fetch_many(texts))
        if not remote:
            return _Answered([r for r in out if r is not None])
        ((base, items),) = remote.items()
        return _NodePending(self.upstream.start_many(base, [h for _, h in items]), out, items, base)

    def _split(
        self, texts: list[str]
    ) -> tuple[list[Fetched | None], dict[str, list[tuple[int, Handle]]]]:
        """This node's records and failures in place (None elsewhere); the rest by node."""
        out: list[Fetched | None] = [None] * len(texts)
        remote: dict[str, list[tuple[int, Handle]]] = {}
        for i, text in enumerate(texts):
            try:
                handle = parse_handle(text)
                found = self._home(handle)
                if found is None:
                    out[i] = (self.records.resolve(handle), self.own_url)
                else:
                    remote.setdefault(found.base_url, []).append((i, handle))
            except HandleError as exc:
                out[i] = exc
        return out, remote

    def _home(self, handle: Handle) -> Delegation | None:
        """The delegation of the node that homes `handle`; None where this node does."""
        # One trace asks about few prefixes many times: each is looked up once per trace.
        key = (fold(handle.homed_prefix), handle.is_prefix_record)
        if key not in self._homes:
            self._homes[key] = self._lookup(handle)
        return self._homes[key]

    def _lookup(self, handle: Handle) -> Delegation | None:
        found = self._delegation(handle)
        if found is None or (handle.is_prefix_record and fold(found.prefix) == fold(handle.suffix)):
            self._remember(NodeInfo(self.own_url, self.own_name, None, self.own_prefix))
            return None
        self._remember(_describe(found))
        return found

    def _remember(self, info: NodeInfo) -> None:
        with self._lock:
            self.nodes.setdefault(info.url, info)


class _Answered:
    """A group answered at once (tracer Pending)."""

    expires_at = math.inf

    def __init__(self, results: list[Fetched]) -> None:
        self._results = results

    def fileno(self) -> int | None:
        """Nothing to wait for."""
        return None

    def finish(self) -> list[Fetched]:
        """The records in order."""
        return self._results

    def expire(self) -> list[Fetched]:
        """Never late."""
        return self._results


class _NodePending:
    """One node's multi-get on its way, with the group's records of this node (tracer Pending)."""

    def __init__(
        self,
        pending: PendingMany,
        out: list[Fetched | None],
        items: list[tuple[int, Handle]],
        base: str,
    ) -> None:
        self._pending = pending
        self._out = out
        self._items = items
        self._base = base
        self.expires_at = pending.expires_at

    def fileno(self) -> int | None:
        """The multi-get's socket (None if it was answered at once)."""
        return self._pending.fileno()

    def finish(self) -> list[Fetched]:
        """The records in order; raises if the multi-get failed as a whole."""
        return self._merge(self._pending.finish())

    def expire(self) -> list[Fetched]:
        """The multi-get is given up on: its records time out."""
        late = self._pending.expire()
        return self._merge([late] * len(self._items))

    def _merge(self, results: list[list[dict[str, Any]] | HandleError]) -> list[Fetched]:
        out = _merged(self._out, self._items, results, self._base)
        return [r for r in out if r is not None]


def _merged(
    out: list[Fetched | None],
    items: list[tuple[int, Handle]],
    results: list[list[dict[str, Any]] | HandleError],
    base: str,
) -> list[Fetched | None]:
    """`out` with one node's answers (or errors) put at their items' places."""
    merged = list(out)
    for (i, _), result in zip(items, results, strict=True):
        merged[i] = result if isinstance(result, BaseException) else (result, base)
    return merged


def _describe(found: Delegation) -> NodeInfo:
    """Node name and title from the HS_SITE attributes of a delegated prefix."""
    attrs: dict[str, str] = {}
    for site in found.sites:
        for attr in site["data"]["value"].get("attributes", []):
            attrs.setdefault(str(attr.get("name")), str(attr.get("value")))
    return NodeInfo(found.base_url, attrs.get("node"), attrs.get("desc"), found.prefix)


def node_verifier(app: Flask) -> Verifier:
    """The node's own verifier: its key ring is the anchor, prefix records come from its store.

    Kept on the app so verified prefix keys are cached across traces; made anew when the
    ring changed (a rotation).
    """
    trust: NodeTrust = app.extensions[TRUST]
    ring = trust.signer.ring
    verifier: Verifier | None = app.extensions.get(VERIFIER)
    anchor = verifier.anchor if verifier is not None else None
    if verifier is None or anchor is None or list(anchor.public_keys) != ring.kids():

        def fetch(handle: str, fresh: bool) -> list[dict[str, Any]]:
            return NodeFetch(app)(handle)[0]

        verifier = Verifier(Anchor(trust.spec.prefix, ring.public_jwks(), "self"), fetch, ttl=60)
        app.extensions[VERIFIER] = verifier
    return verifier


def server_trace(
    app: Flask,
    text: str,
    *,
    deadline: float = DEFAULT_DEADLINE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> Trace:
    """Trace an identifier in-process; InvalidHandle for a malformed one."""
    handle = parse_handle(text)
    fetch = NodeFetch(app)
    result = run_trace(
        handle.text,
        fetch,
        deadline=deadline,
        max_depth=max_depth,
        max_records=max_records,
        verify=node_verifier(app).check,
        batch=fetch,
    )
    result.label_nodes(fetch.nodes.values())
    return result


def raise_for_root(result: Trace) -> None:
    """Turn a trace whose root is missing into the Handle error a client expects."""
    failure = result.root_error
    if failure is None:
        return
    if failure.reason == "not_found":
        raise HandleNotFound(failure.message, handle=failure.handle)
    if failure.reason == "unreachable":
        raise UpstreamGatewayError(failure.message, url=failure.node or "", handle=failure.handle)
    if failure.reason in ("timeout", "deadline"):
        raise UpstreamTimeout(failure.message, url=failure.node or "", handle=failure.handle)
    error: HandleError = error_for_code(failure.response_code or 2)(
        failure.message, handle=failure.handle
    )
    raise error


def trace_blueprint() -> Blueprint:
    """The trace API route."""
    bp = Blueprint("trace", __name__)

    @bp.get("/api/trace/<path:text>")
    def get_trace(text: str) -> Response:
        try:
            parse_handle(text)
        except HandleError as exc:
            exc.handle = text
            raise
        result = server_trace(
            current_app,
            text,
            deadline=query_float(request, "deadline", DEFAULT_DEADLINE, 0.1, MAX_DEADLINE),
            max_depth=int(query_float(request, "depth", DEFAULT_MAX_DEPTH, 0, MAX_DEPTH)),
            max_records=int(
                query_float(request, "maxRecords", DEFAULT_MAX_RECORDS, 1, MAX_RECORDS)
            ),
        )
        raise_for_root(result)
        return json_response(result.to_json())

    return bp
