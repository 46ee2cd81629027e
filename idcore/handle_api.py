"""The Handle REST API blueprint (`/api/handles`), shared by both node kinds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from idcore.credentials import FailureThrottle
from idcore.errors import HandleNotFound, InvalidHandle, NotResponsible, ProtocolError
from idcore.identifier import Handle, fold, parse_handle, parse_prefix, validate_prefix
from idcore.records import PutRequest, RecordService, WriteLimits
from idcore.settings import NodeSettings
from idcore.signing import strip_signatures
from idcore.values import parse_values
from idcore.web import (
    JSON_DEPTH_CONFIG,
    json_body,
    json_response,
    query_bool,
    query_ints,
    query_types,
    values_answer,
    values_text_answer,
)

Resolve = Callable[[str, Handle, list[int], list[str]], Response]
"""Answer a GET: (handle as sent, parsed handle, index filters, type filters) → response."""

EXTENSION = "idr.records"


def records() -> RecordService:
    """The RecordService of the running app."""
    service: RecordService = current_app.extensions[EXTENSION]
    return service


def apply_limits(app: Flask, settings: NodeSettings) -> None:
    """Apply the settings' write limits and login throttle to an app and its RecordService."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config[JSON_DEPTH_CONFIG] = settings.max_json_depth
    service: RecordService = app.extensions[EXTENSION]
    service.limits = WriteLimits(
        max_values_per_record=settings.max_values_per_record,
        max_value_bytes=settings.max_value_bytes,
    )
    service.throttle = FailureThrottle(settings.auth_max_failures, settings.auth_failure_window)


def local_resolve(text: str, handle: Handle, indexes: list[int], types: list[str]) -> Response:
    """Answer from this node's own store."""
    if not indexes and not types:
        # The common read: the stored values' text goes out as it is, undecoded.
        stored = records().public_values_text(handle)
        if stored is not None:
            return values_text_answer(text, stored)
    return values_answer(text, records().resolve(handle, indexes, types))


def _parse_path(text: str) -> Handle:
    try:
        return parse_handle(text)
    except InvalidHandle as exc:
        exc.handle = text
        raise


def handles_blueprint(
    resolve: Resolve = local_resolve, before_write: Callable[[Handle], None] | None = None
) -> Blueprint:
    """Routes of the Handle REST API; `resolve` decides how GETs are answered."""
    bp = Blueprint("handles", __name__)

    @bp.get("/api/handles/<path:text>")
    def get_handle(text: str) -> Response:
        handle = _parse_path(text)
        return resolve(text, handle, query_ints(request, "index"), query_types(request))

    @bp.put("/api/handles/<path:text>")
    def put_handle(text: str) -> Response:
        mint = query_bool(request, "mintNewSuffix", False)
        if mint and text.endswith("/"):
            prefix = text[:-1]
            validate_prefix(prefix)
            handle = Handle(prefix, "")
        else:
            handle = _parse_path(text)
        if before_write:
            before_write(handle)
        service = records()
        service.check_home(handle if handle.suffix else Handle(handle.prefix, "x"))
        identity = service.authenticate(request.headers.get("Authorization"))
        body = json_body(request)
        # HS_SIGNATURE is the node's to write: one a client sends back is dropped.
        raw_values = strip_signatures(_values_of(body, text, handle))
        values = parse_values(
            raw_values,
            max_values=service.limits.max_values_per_record,
            max_value_bytes=service.limits.max_value_bytes,
        )
        indexes = _index_param(request.args.getlist("index"), [v.index for v in values])
        put = PutRequest(
            handle=handle,
            values=values,
            indexes=indexes,
            overwrite=query_bool(request, "overwrite", True),
            mint_suffix=mint,
        )
        result = service.put(put, identity)
        status = 201 if result.created else 200
        return json_response({"responseCode": 1, "handle": result.handle}, status)

    @bp.delete("/api/handles/<path:text>")
    def delete_handle(text: str) -> Response:
        handle = _parse_path(text)
        if before_write:
            before_write(handle)
        service = records()
        service.check_home(handle)
        identity = service.authenticate(request.headers.get("Authorization"))
        service.delete(handle, query_ints(request, "index"), identity)
        return json_response({"responseCode": 1, "handle": text})

    @bp.get("/api/handles")
    def list_handles() -> Response:
        raw = request.args.get("prefix")
        if not raw:
            raise ProtocolError("listing needs ?prefix=<prefix>, e.g. ?prefix=88.168.1")
        prefix = parse_prefix(raw)
        page = _optional_int("page")
        size = _optional_int("pageSize")
        service = records()
        try:
            service.check_home(Handle(prefix, "x"))
        except NotResponsible:
            if prefix.upper() != "0.NA":
                raise
        total, handles = service.list_handles(prefix, page, size)
        return json_response({"prefix": raw, "totalCount": str(total), "handles": handles})

    return bp


def _optional_int(name: str) -> int | None:
    values = query_ints(request, name)
    if not values:
        return None
    if name == "pageSize" and values[0] == 0:
        raise ProtocolError("pageSize must be at least 1")
    return values[0]


def _values_of(body: Any, path_handle: str, handle: Handle) -> Any:
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        raise ProtocolError('the body must be {"values": [...]} or a JSON array of values')
    named = body.get("handle")
    # ASCII-only case folding (as lookups do); `88.168.1` and `0.NA/88.168.1` are one handle.
    if named is not None and (
        not isinstance(named, str) or fold(named) not in (fold(path_handle), handle.key)
    ):
        raise ProtocolError(
            f"body names handle {named!r} but the path names {path_handle!r}: they must match"
        )
    if "values" not in body:
        raise ProtocolError("the body has no 'values' list")
    return body["values"]


def _index_param(raw: list[str], body_indexes: list[int]) -> list[int] | None:
    if not raw:
        return None
    if raw == ["various"]:
        return []
    wanted: list[int] = []
    for item in raw:
        for part in item.split(","):
            try:
                wanted.append(int(part))
            except ValueError:
                raise ProtocolError(f"index={part!r} is not an integer or 'various'") from None
    if sorted(set(wanted)) != sorted(set(body_indexes)):
        raise ProtocolError(
            f"index= lists {sorted(set(wanted))} but the body carries {sorted(body_indexes)}: "
            "they must be the same (or use index=various)"
        )
    return wanted


__all__ = [
    "EXTENSION",
    "HandleNotFound",
    "apply_limits",
    "handles_blueprint",
    "local_resolve",
    "records",
]
