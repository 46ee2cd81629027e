"""Batch registration over HTTP: `POST /api/batch/handles` (PROTOCOL.md: at most 2000 items).

The request is authenticated once. A malformed body or more than 2000 items is refused
as a whole (HTTP 400, responseCode 4) before anything is written. Otherwise the answer
is HTTP 200 with responseCode 1 and one `{handle, responseCode, message}` per item, in
order: responseCode 1 for an item written, the Handle code of its error otherwise;
`failed` counts the items refused, so check it (or each item) rather than the status.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response, request

from idcore.batch import parse_batch_body, register_batch
from idcore.handle_api import records
from idcore.web import (
    MAX_JSON_DEPTH,
    decode_json,
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
    return decode_json(req.get_data(cache=False), MAX_JSON_DEPTH)


def batch_blueprint() -> Blueprint:
    """The batch registration route."""
    bp = Blueprint("batch", __name__)

    @bp.post("/api/batch/handles")
    def batch_handles() -> Response:
        # 2000 records of a dozen values each exceed the node's default body limit.
        request.max_content_length = BATCH_MAX_BYTES
        service = records()
        identity = service.authenticate(request.headers.get("Authorization"))
        parsed = parse_batch_body(batch_json(request), query_bool(request, "overwrite", False))
        with templates().session():
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

    return bp
