"""`GET /api/batch/handles?handle=A&handle=B`: many identifiers resolved in one request.

The top-level node's traces ask a secondary node for a whole wave of records at once
(resolver/upstream.py), instead of one GET each: a node is one Python process, so a
wave's GETs were served one after the other anyway, each paying the request's full
cost. Each item answers exactly what `GET /api/handles/<id>` would: its values, or its
responseCode, HTTP status and message.

Fault rules apply to each identifier as to a GET of `/api/handles/<id>` (the multi-get
request itself is exempt, so no rule draws twice): an error answers that item with the
rule's codes, a dropped connection or outage marks that item `dropped`, and latency
delays the whole answer by the longest of its items' delays.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from idcore.emulator_api import MULTI_GET_PATH, engine
from idcore.errors import HandleError, ProtocolError
from idcore.faults import Decision
from idcore.handle_api import records
from idcore.identifier import Handle, parse_handle
from idcore.records import public_values
from idcore.stats import RESOLVED
from idcore.web import json_response

MAX_HANDLES = 100


def lookup_blueprint() -> Blueprint:
    """The multi-get route."""
    bp = Blueprint("lookup", __name__)

    @bp.get(MULTI_GET_PATH)
    def get_many() -> Response:
        texts = request.args.getlist("handle")
        if not texts:
            raise ProtocolError("name the identifiers to resolve: ?handle=A&handle=B")
        if len(texts) > MAX_HANDLES:
            raise ProtocolError(
                f"{len(texts)} identifiers in one request: the limit is {MAX_HANDLES}"
            )
        results: list[dict[str, Any] | None] = [None] * len(texts)
        wanted: list[tuple[int, Handle]] = []
        delay = 0.0
        faults = engine()
        for i, text in enumerate(texts):
            try:
                handle = parse_handle(text)
                records().check_home(handle)
            except HandleError as exc:
                results[i] = _error(text, exc)
                continue
            decision = faults.decide("GET", f"/api/handles/{text}", handle) if faults else None
            if decision is not None:
                delay = max(delay, decision.latency)
                if decision.action is not None:
                    results[i] = _faulted(text, decision)
                    continue
            wanted.append((i, handle))
        found = records().store.get_many([h.key for _, h in wanted])
        for (i, handle), record in zip(wanted, found, strict=True):
            if record is None:
                results[i] = {
                    "handle": texts[i],
                    "responseCode": 100,
                    "status": 404,
                    "message": f"handle {handle.text!r} not found",
                }
            else:
                values = public_values(record.values)
                results[i] = {
                    "handle": texts[i],
                    "responseCode": 1 if values else 200,
                    "status": 200,
                    "values": values,
                }
        if delay > 0:
            faults.wait(delay)
        setattr(g, RESOLVED, [(r["handle"], r["responseCode"], r["status"]) for r in results if r])
        return json_response({"responseCode": 1, "results": results})

    return bp


def _error(text: str, exc: HandleError) -> dict[str, Any]:
    return {
        "handle": text,
        "responseCode": int(exc.code),
        "status": exc.http_status,
        "message": exc.message,
    }


def _faulted(text: str, decision: Decision) -> dict[str, Any]:
    if decision.action == "drop":
        return {"handle": text, "responseCode": 2, "status": None, "dropped": True}
    return {
        "handle": text,
        "responseCode": decision.response_code,
        "status": decision.http_status,
        "message": decision.message,
    }
