"""Batch registration over HTTP: `POST /api/batch/handles` (PROTOCOL.md: at most 2000 items).

The request is authenticated once. A malformed body or more than 2000 items is refused
as a whole (HTTP 400, responseCode 4) before anything is written. Otherwise the answer
is HTTP 200 with responseCode 1 and one `{handle, responseCode, message}` per item, in
order: responseCode 1 for an item written, the Handle code of its error otherwise;
`failed` counts the items refused, so check it (or each item) rather than the status.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Request, Response, request

from idcore import jsontext
from idcore.batch import parse_batch_body, register_batch
from idcore.credentials import Identity
from idcore.handle_api import records
from idcore.records import RecordService
from idcore.signing import Signer
from idcore.web import (
    MAX_JSON_DEPTH,
    decode_json,
    json_depth,
    json_response,
    query_bool,
    require_json_media,
)
from secondary_nodes.templates import templates

BATCH_MAX_BYTES = 64 * 1024 * 1024


def batch_json(req: Request) -> Any:
    """The JSON body, read as idcore.web.json_body reads it but without its depth walk.

    Walking every node of a 7 MB body costs about 0.1 s. Here only the values of an
    item that leaves the plain fast path can nest (formats site, key, vlist), and
    register_batch checks their depth item by item; the rest of the body is either
    checked field by field or ignored.
    """
    require_json_media(req)
    return parse_body(req.get_data(cache=False))


def parse_body(raw: bytes) -> Any:
    """The body parsed as decode_json parses it (same objects, same errors), but faster.

    orjson reads a batch body in two thirds of the time; what it might read differently
    or refuses is left to decode_json (idcore.jsontext.loads), so errors keep their words.
    A lone surrogate is refused as a single PUT refuses it (ProtocolError, the whole
    request): it has no UTF-8 form, so no store could keep it as sent.
    """
    read_by_stdlib = False

    def fallback(data: bytes) -> Any:
        nonlocal read_by_stdlib
        read_by_stdlib = True
        return decode_json(data, MAX_JSON_DEPTH)

    body = jsontext.loads(raw, fallback=fallback)
    # Only a \uD800-\uDFFF escape can make one (raw UTF-8 cannot), and orjson refuses
    # those: look (two scans of a body of megabytes) only when the stdlib read it.
    if read_by_stdlib and (b"\\ud" in raw or b"\\uD" in raw):
        json_depth(body, check_text=True)
    return body


class CollectorPause:
    """Keeps Python's cyclic garbage collector off while any batch runs (any thread).

    A 2000-item body parses into some 100,000 dicts and lists that live until the answer
    is sent; allocation bursts make the collector walk them again and again (full
    collections included), a fifth of a batch's time. Nothing a batch makes is cyclic,
    so reference counting frees it all the same; the collector resumes (if it was on)
    when the last batch in flight ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._resume = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The collector is off within the block."""
        with self._lock:
            if self._running == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._resume:
                    gc.enable()


COLLECTOR = CollectorPause()


def signing_session(service: RecordService) -> contextlib.AbstractContextManager[None]:
    """The node signer's session (one key-ring check for the whole batch), if it has one."""
    signer = service.signer
    return signer.session() if isinstance(signer, Signer) else contextlib.nullcontext()


def batch_blueprint() -> Blueprint:
    """The batch registration route."""
    bp = Blueprint("batch", __name__)

    @bp.post("/api/batch/handles")
    def batch_handles() -> Response:
        # 2000 records of a dozen values each exceed the node's default body limit.
        request.max_content_length = BATCH_MAX_BYTES
        service = records()
        identity = service.authenticate(request.headers.get("Authorization"))
        with COLLECTOR.held():
            # The body and records are freed when answer() returns, before the collector
            # is back: else its first run would walk them all once more.
            return answer(service, identity)

    return bp


def answer(service: RecordService, identity: Identity) -> Response:
    """Parse, register and answer one batch request."""
    parsed = parse_batch_body(batch_json(request), query_bool(request, "overwrite", False))
    with templates().session(), signing_session(service):
        results = register_batch(service, identity, parsed.items, parsed.overwrite)
    failed = sum(1 for r in results if not r.ok)
    return json_response(
        {
            "responseCode": 1,
            "total": len(results),
            "succeeded": len(results) - failed,
            "failed": failed,
            "results": [r.to_json() for r in results],
        }
    )
