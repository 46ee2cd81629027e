"""Access logs: one JSON line per request (node, identifier, response code, duration, client).

Secrets never reach a log line: the Authorization header, request bodies and query
strings are not read here at all.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from flask import Request, Response, g

from idcore.journal import response_code_of

ACCESS_LOGGER = "idr.access"

# Handle JSON answers start with the response code (idcore.web.json_response keeps key order).
_HEAD_BYTES = 512
# View arguments that carry an identifier in the routes of both node kinds.
_IDENTIFIER_ARGS = ("text", "identifier", "handle", "id", "code")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What one request did: the facts both the access log and the statistics use."""

    node: str
    method: str
    path: str
    route: str | None
    identifier: str | None
    status: int
    response_code: int | None
    duration_ms: float
    client: str | None


def response_code(response: Response) -> int | None:
    """The Handle responseCode of a JSON answer, read from the first bytes of its body."""
    if response.direct_passthrough or not response.is_sequence:
        return None
    if not (response.mimetype or "").endswith("json"):
        return None
    return response_code_of(response.get_data()[:_HEAD_BYTES])


def request_identifier(request: Request) -> str | None:
    """The identifier a request names in its path, if its route takes one."""
    args = request.view_args or {}
    for name in _IDENTIFIER_ARGS:
        value = args.get(name)
        if isinstance(value, str):
            return value
    return None


def request_info(node: str, request: Request, response: Response, duration: float) -> RequestInfo:
    """Collect the facts of a finished request."""
    rule = request.url_rule
    return RequestInfo(
        node=node,
        method=request.method,
        path=request.path,
        route=rule.rule if rule is not None else None,
        identifier=request_identifier(request),
        status=response.status_code,
        response_code=response_code(response),
        duration_ms=round(duration * 1000, 3),
        client=request.remote_addr,
    )


def mark_started() -> None:
    """Start the request's clock once: whichever first before-request hook runs sets it."""
    if "idr_started" not in g:
        g.idr_started = time.perf_counter()


def request_facts(node: str, request: Request, response: Response) -> RequestInfo:
    """The facts of the finished request, worked out once for the journal, stats and log."""
    cached: tuple[Response, RequestInfo] | None = g.get("idr_request_info")
    if cached is not None and cached[0] is response:
        return cached[1]
    started = g.get("idr_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    info = request_info(node, request, response, duration)
    g.idr_request_info = (response, info)
    return info


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the moment (test runners swap it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        # Assign rather than setStream(): that flushes the old stream, which a test runner
        # may already have closed.
        self.stream = sys.stdout
        super().emit(record)


def access_logger() -> logging.Logger:
    """The `idr.access` logger, writing bare JSON lines to stdout unless configured otherwise."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        handler = _StdoutHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def log_line(info: RequestInfo) -> str:
    """The JSON line for one request."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {"ts": stamp, "event": "request", **asdict(info)}
    # The Handle API's own spelling, so a log line reads like the answer it describes.
    body["responseCode"] = body.pop("response_code")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def log_request(info: RequestInfo) -> None:
    """Write the access-log line of one request."""
    logger = access_logger()
    if logger.isEnabledFor(logging.INFO):
        logger.info(log_line(info))
