"""Access logs: one JSON line per request (node, identifier, response code, duration, client).

Secrets never reach a log line: the Authorization header, request bodies and query
strings are not read here at all.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Request, Response, g

from idcore import jsontext
from idcore.journal import response_code_of

ACCESS_LOGGER = "idr.access"
FLUSH_SECONDS = 0.1
"""At most this late, an access line reaches stdout."""
FLUSH_LINES = 512

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


class _StdoutHandler(logging.Handler):
    """Writes lines to whatever sys.stdout is, in batches at most FLUSH_SECONDS late.

    One write and flush per request, under the handler's lock, was the largest cost of a
    fast request: lines are queued instead, and a thread of the process writes them out.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[str] = []
        self._pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle).
        self._lines.append(record.getMessage() + "\n")
        if self._pid != os.getpid():
            self._start()  # first line in this process: threads do not survive a fork
        if len(self._lines) >= FLUSH_LINES:
            self._write(self._take())

    def _start(self) -> None:
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="idr-access-log", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def _take(self) -> list[str]:
        lines, self._lines = self._lines, []
        return lines

    def flush(self) -> None:
        """Write every queued line now."""
        with self.lock:  # type: ignore[union-attr]  # created in Handler.__init__
            lines = self._take()
            if lines:
                self._write(lines)

    def _write(self, lines: list[str]) -> None:
        try:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
        except (OSError, ValueError):
            pass  # stdout closed or gone (a test runner swapped it): access lines are lost


def access_logger() -> logging.Logger:
    """The `idr.access` logger, writing bare JSON lines to stdout unless configured otherwise."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        logger.addHandler(_StdoutHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def log_line(info: RequestInfo) -> str:
    """The JSON line for one request."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {
        "ts": stamp,
        "event": "request",
        "node": info.node,
        "method": info.method,
        "path": info.path,
        "route": info.route,
        "identifier": info.identifier,
        "status": info.status,
        # The Handle API's own spelling, so a log line reads like the answer it describes.
        "responseCode": info.response_code,
        "duration_ms": info.duration_ms,
        "client": info.client,
    }
    return jsontext.dumps(body).decode("utf-8")


def log_request(info: RequestInfo) -> None:
    """Write the access-log line of one request."""
    logger = access_logger()
    if logger.isEnabledFor(logging.INFO):
        # makeRecord + handle: Logger.info would also walk the stack for the caller's
        # file and line, which an access line does not show.
        logger.handle(
            logger.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, log_line(info), (), None)
        )
