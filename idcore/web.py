"""Flask pieces both node kinds share: JSON errors, request parsing, Handle JSON answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException

from idcore.codes import ResponseCode
from idcore.errors import HandleError, ProtocolError

log = logging.getLogger("idr.web")

MAX_JSON_DEPTH = 32


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON answer."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    resp = Response(text, status=status, mimetype="application/json")
    if headers:
        resp.headers.update(headers)
    return resp


def error_response(error: HandleError) -> Response:
    """Render any HandleError as Handle JSON with its HTTP status."""
    headers = {}
    if error.code == ResponseCode.AUTHENTICATION_NEEDED:
        headers["WWW-Authenticate"] = 'Basic realm="handle"'
    return json_response(error.to_json(), error.http_status, headers)


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as Handle JSON: never HTML, never a traceback."""

    @app.errorhandler(HandleError)
    def _handle_error(error: HandleError) -> Response:
        # Every Handle error names the handle asked about (pyhandle reads it).
        if error.handle is None and request.view_args and "text" in request.view_args:
            error.handle = str(request.view_args["text"])
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 405:
            code = ResponseCode.OPERATION_NOT_SUPPORTED
            message = f"method not allowed here: {error.description}"
        elif status == 404:
            code = ResponseCode.PROTOCOL_ERROR
            message = "no such API path: see /openapi.json or /api/handles/{prefix}/{suffix}"
        elif status == 413:
            code = ResponseCode.PROTOCOL_ERROR
            message = "request body too large"
        else:
            code = ResponseCode.PROTOCOL_ERROR if status < 500 else ResponseCode.ERROR
            message = error.description or error.name
        resp = json_response({"responseCode": int(code), "message": message}, status)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unexpected error")
        return json_response(
            {"responseCode": int(ResponseCode.ERROR), "message": "internal error"}, 500
        )


def query_ints(request: Request, name: str) -> list[int]:
    """Repeated integer query parameters such as `index=1&index=2`."""
    out = []
    for raw in request.args.getlist(name):
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                number = int(part)
            except ValueError:
                raise ProtocolError(f"query parameter {name}={part!r} is not an integer") from None
            if number < 0 or number > 2**31 - 1:
                raise ProtocolError(f"query parameter {name}={number} is out of range")
            out.append(number)
    return out


def query_bool(request: Request, name: str, default: bool) -> bool:
    """A boolean query parameter: true/false (1/0, yes/no)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ProtocolError(f"query parameter {name}={raw!r} must be true or false")


def query_types(request: Request) -> list[str]:
    """Repeated `type=` filters."""
    return [t for t in request.args.getlist("type") if t]


def json_body(request: Request) -> Any:
    """The JSON body of a write; the media type must be JSON."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProtocolError(
            f"Content-Type must be application/json, not {request.content_type or 'missing'!r}"
        )
    raw = request.get_data(cache=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise ProtocolError(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise ProtocolError(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels")
    return body


def _depth(node: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(node, dict):
        return max((_depth(v, level + 1) for v in node.values()), default=level + 1)
    if isinstance(node, list):
        return max((_depth(v, level + 1) for v in node), default=level + 1)
    return level


def values_answer(handle: str, values: Sequence[dict[str, Any]]) -> Response:
    """A resolve answer: responseCode 1, or 200 with no values (both HTTP 200)."""
    code = ResponseCode.SUCCESS if values else ResponseCode.VALUES_NOT_FOUND
    return json_response({"responseCode": int(code), "handle": handle, "values": list(values)})
