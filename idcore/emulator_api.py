"""Emulator controls under /_emulator: health, readiness, fault injection, journal and reset.

`init_app(app, reseed=...)` installs the per-request hooks: the fault engine decides first
(latency, an error answer, a dropped connection, an outage) and the journal records every
request but the controls themselves, which are never faulted.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from idcore.bootstrap import SEED_META
from idcore.errors import OperationNotSupported, ProtocolError
from idcore.faults import (
    CONTROL_PREFIX,
    DROP_ENVIRON_KEY,
    Decision,
    FaultEngine,
    handle_in_path,
    parse_rules,
)
from idcore.handle_api import records
from idcore.journal import Journal
from idcore.logs import mark_started, request_facts
from idcore.store import Record, Store
from idcore.web import json_body, json_response, query_bool, query_ints

STARTED = time.time()
FAULTS = "idr.faults"
JOURNAL = "idr.journal"
RESEED = "idr.reseed"
"""app.extensions key of a callable that restores the node's seeded state."""
MULTI_GET_PATH = "/api/batch/handles"
"""The multi-get (secondary_nodes/lookup.py), whose items are faulted one by one."""

Reseed = Callable[[], None]


# -- the hooks ------------------------------------------------------------------------------


def init_app(app: Flask, reseed: Reseed | None = None, journal_size: int = 1000) -> None:
    """Give an app its fault engine, journal and (optionally) how to restore its seed."""
    app.extensions[FAULTS] = FaultEngine()
    app.extensions[JOURNAL] = Journal(journal_size)
    if reseed is not None:
        app.extensions[RESEED] = reseed
    # First in line, so injected latency and the journal's duration cover the whole request.
    app.before_request_funcs.setdefault(None, []).insert(0, _inject)
    app.after_request(_record)


def engine() -> FaultEngine:
    """The fault engine of the running app."""
    found: FaultEngine = current_app.extensions[FAULTS]
    return found


def journal() -> Journal:
    """The request journal of the running app."""
    found: Journal = current_app.extensions[JOURNAL]
    return found


def _inject() -> Response | None:
    mark_started()
    path = request.path
    if path.startswith(CONTROL_PREFIX):
        return None
    if request.method == "GET" and path == MULTI_GET_PATH:
        return None  # each identifier is faulted as its own GET (secondary_nodes/lookup.py)
    decision = engine().decide(request.method, path, handle_in_path(path))
    if decision is None:
        return None
    g.idr_fault = decision.label
    if decision.latency > 0:
        engine().wait(decision.latency)
    if decision.action == "drop":
        return _drop()
    if decision.action == "error":
        return _error_answer(decision)
    return None


def _error_answer(decision: Decision) -> Response:
    body: dict[str, Any] = {"responseCode": decision.response_code}
    handle = handle_in_path(request.path)
    if handle is not None:
        body["handle"] = handle.text
    body["message"] = decision.message
    return json_response(body, decision.http_status, {"X-Idr-Fault": ",".join(decision.fired)})


def _drop() -> Response:
    """Close the client's connection without an answer (a real socket under gunicorn)."""
    g.idr_dropped = True
    dropper = request.environ.get(DROP_ENVIRON_KEY)
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    if callable(dropper):
        dropper()
    elif isinstance(sock, socket.socket):
        # The client reads EOF before any status line; the server's own write then fails
        # (EPIPE), which gunicorn and werkzeug treat as a client that went away.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    resp = Response(b"", status=503)
    resp.headers["Connection"] = "close"
    return resp


def _record(response: Response) -> Response:
    path = request.path
    if path.startswith(CONTROL_PREFIX) or JOURNAL not in current_app.extensions:
        return response
    dropped = bool(g.get("idr_dropped"))
    facts = request_facts(current_app.config["IDR_NODE"]["node"], request, response)
    journal().add(
        method=facts.method,
        path=facts.path,
        query=request.query_string.decode("latin-1"),
        handle=facts.identifier,
        status=None if dropped else facts.status,
        response_code=None if dropped else facts.response_code,
        duration_ms=facts.duration_ms,
        client=facts.client,
        fault=g.get("idr_fault"),
    )
    return response


# -- restoring the seed ---------------------------------------------------------------------


def reseeder(
    store: Store, mark: str, build: Callable[[], Iterable[Record]], *after: Callable[[], None]
) -> Reseed:
    """A callable that puts the store back to its seed, then runs `after` (clear caches)."""

    def reseed() -> None:
        # In place, not clear-then-seed: a reader (the top level's recursion, filling its
        # cache) must never find a seeded record missing halfway through a reset.
        store.restore(build(), {SEED_META: mark})
        for step in after:
            step()

    return reseed


# -- the routes -----------------------------------------------------------------------------


def emulator_blueprint() -> Blueprint:
    """Routes of the emulator controls."""
    bp = Blueprint("emulator", __name__, url_prefix=CONTROL_PREFIX)

    @bp.get("/health")
    def health() -> Response:
        info = current_app.config["IDR_NODE"]
        return json_response({"status": "ok", **info, "uptime": round(time.time() - STARTED, 3)})

    @bp.get("/ready")
    def ready() -> Response:
        store = records().store
        store_ok = store.ping()
        seeded = bool(store_ok and store.get_meta(SEED_META))
        body = {"ready": store_ok and seeded, "store": store_ok, "seeded": seeded}
        return json_response(body, 200 if body["ready"] else 503)

    @bp.get("/faults")
    def list_faults() -> Response:
        return json_response({"faults": engine().rules()})

    @bp.put("/faults")
    def set_faults() -> Response:
        rules = parse_rules(json_body(request))
        return json_response({"faults": engine().set(rules)})

    @bp.post("/faults")
    def add_faults() -> Response:
        rules = parse_rules(json_body(request))
        added = [engine().add(rule) for rule in rules]
        return json_response({"faults": added}, 201)

    @bp.delete("/faults")
    def clear_faults() -> Response:
        engine().clear()
        return json_response({"faults": []})

    @bp.delete("/faults/<rule_id>")
    def remove_fault(rule_id: str) -> Response:
        if not engine().remove(rule_id):
            message = f"no fault with id {rule_id!r}: GET /_emulator/faults lists them"
            return json_response({"responseCode": 4, "message": message}, 404)
        return json_response({"faults": engine().rules()})

    @bp.get("/faults/log")
    def fault_log() -> Response:
        events = engine().log(_one_int("limit"))
        return json_response({"events": [e.to_json() for e in events]})

    @bp.get("/journal")
    def list_journal() -> Response:
        found = journal().entries(_one_int("limit"), _one_int("since") or 0)
        return json_response(
            {"capacity": journal().capacity, "entries": [e.to_json() for e in found]}
        )

    @bp.delete("/journal")
    def clear_journal() -> Response:
        journal().clear()
        return json_response({"entries": []})

    @bp.post("/reset")
    def reset() -> Response:
        reseed: Reseed | None = current_app.extensions.get(RESEED)
        if reseed is None:
            raise OperationNotSupported("this node has no seeded state to restore")
        keep = query_bool(request, "keepFaults", False)
        reseed()
        if not keep:
            engine().clear()
        journal().clear()
        info = current_app.config["IDR_NODE"]
        return json_response(
            {
                "responseCode": 1,
                "node": info["node"],
                "records": records().store.count(),
                "faults": len(engine().rules()),
            }
        )

    return bp


def _one_int(name: str) -> int | None:
    values = query_ints(request, name)
    if len(values) > 1:
        raise ProtocolError(f"give {name}= once, not {len(values)} times")
    return values[0] if values else None
