"""Replication routes of a top-level node: the feed, `/_emulator/status` and `promote`.

`GET /api/replication/changes?after=SEQ&limit=N&wait=S` (bearer token) answers the
changes after SEQ, waiting up to S seconds for one; `GET /_emulator/status` reports the
role, the epoch, the position and the lag; `POST /_emulator/promote` makes a backup the
writable primary. Every successful write on a primary waits for a connected backup
(semi-synchronous) and says how it went in `X-Idr-Replicated`.
"""

from __future__ import annotations

import select
import socket

from flask import Blueprint, Flask, Response, current_app, request

from idcore.errors import OperationNotSupported, ProtocolError
from idcore.settings import NodeSettings
from idcore.store import Store
from idcore.topology import NodeSpec, Topology
from idcore.web import json_response, query_float
from resolver.follower import Follower
from resolver.replication import FEED_PATH, REPLICATION, Replication

FOLLOWER = "idr.follower"
MAX_WAIT = 30.0
MAX_LIMIT = 5000


def replication() -> Replication:
    """The Replication of the running app."""
    found: Replication = current_app.extensions[REPLICATION]
    return found


def _hung_up(sock: socket.socket) -> bool:
    """True once the client closed its end (a stopped backup): no need to wait on."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        events = poller.poll(0)
        if not events:
            return False
        if events[0][1] & (select.POLLHUP | select.POLLERR):
            return True
        # Readable: either the next request of a pipelining client, or end of stream.
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return False


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ProtocolError(f"query parameter {name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ProtocolError(f"query parameter {name}={value} must be within {low}..{high}")
    return value


def replication_blueprint() -> Blueprint:
    """The feed, the status and the promotion routes."""
    bp = Blueprint("replication", __name__)

    @bp.get(FEED_PATH)
    def changes() -> Response:
        repl = replication()
        if not repl.store.changelog:
            raise OperationNotSupported(f"{repl.name} keeps no change log (open its store with it)")
        repl.check_token(request.headers.get("Authorization"))
        sock = request.environ.get("gunicorn.socket")
        body = repl.feed(
            after=_int_arg("after", 0, 0, 2**62),
            limit=_int_arg("limit", 500, 1, MAX_LIMIT),
            wait=query_float(request, "wait", 0.0, 0.0, MAX_WAIT),
            follower=request.args.get("follower") or None,
            follower_log=request.args.get("log") or None,
            follower_at=query_float(request, "at", 0.0, 0.0, 1e12)
            if request.args.get("at")
            else None,
            gone=(lambda: _hung_up(sock)) if isinstance(sock, socket.socket) else lambda: False,
        )
        return json_response(body)

    @bp.get("/_emulator/status")
    def status() -> Response:
        return json_response(replication().status())

    @bp.post("/_emulator/promote")
    def promote() -> Response:
        repl = replication()
        result = repl.promote()
        return json_response({"responseCode": 1, **result, "status": repl.status()})

    @bp.after_app_request
    def semi_sync(response: Response) -> Response:
        if (
            request.method in ("PUT", "POST", "DELETE")
            and request.path.startswith("/api/")
            and not request.path.startswith("/api/replication/")
            and response.status_code < 300
        ):
            repl = current_app.extensions.get(REPLICATION)
            if isinstance(repl, Replication) and repl.role() == "primary":
                outcome = repl.wait_replicated(repl.store.last_seq())
                response.headers["X-Idr-Replicated"] = outcome
        return response

    return bp


def init_replication(app: Flask, store: Store, spec: NodeSpec, topology: Topology) -> Replication:
    """Attach replication to a top-level app (not started: see `start`)."""
    settings: NodeSettings = app.extensions["idr.settings"]
    repl = Replication(store, spec, topology, settings)
    app.extensions[REPLICATION] = repl
    app.extensions[FOLLOWER] = Follower(repl)
    app.register_blueprint(replication_blueprint())
    return repl


def start(app: Flask) -> Follower:
    """Start the replication thread of a built app (entry points call this before serving)."""
    follower: Follower = app.extensions[FOLLOWER]
    follower.start()
    return follower
