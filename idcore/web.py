"""Flask pieces both node kinds share: JSON errors, request parsing, Handle JSON answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Request, Response, current_app, has_request_context, request
from werkzeug.exceptions import HTTPException

from idcore import jsontext
from idcore.codes import ResponseCode
from idcore.errors import HandleError, InvalidHandle, ProtocolError, ServerBusy
from idcore.identifier import parse_handle
from idcore.values import MAX_JSON_DEPTH as MAX_JSON_DEPTH

log = logging.getLogger("idr.web")

JSON_DEPTH_CONFIG = "IDR_MAX_JSON_DEPTH"
"""app.config key of the JSON nesting limit (NodeSettings.max_json_depth)."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON answer."""
    resp = Response(jsontext.dumps(body), status=status, mimetype="application/json")
    if headers:
        resp.headers.update(headers)
    return resp


def error_response(error: HandleError) -> Response:
    """Render any HandleError as Handle JSON with its HTTP status."""
    headers = {}
    if error.code == ResponseCode.AUTHENTICATION_NEEDED:
        headers["WWW-Authenticate"] = 'Basic realm="handle"'
    retry = error.details.get("retryAfter")
    if isinstance(error, ServerBusy) and isinstance(retry, int):
        headers["Retry-After"] = str(retry)
    return json_response(error.to_json(), error.http_status, headers)


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as Handle JSON: never HTML, never a traceback.

    Also refuses a request path that is not valid UTF-8 before any route sees it.
    """

    @app.before_request
    def _utf8_path() -> None:
        # Werkzeug turns undecodable bytes into U+FFFD; an identifier must never be guessed.
        environ = request.environ
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        try:
            if isinstance(uri, str):
                unquote_to_bytes(uri.split("?", 1)[0]).decode("utf-8")
            environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            message = "the request path is not valid UTF-8 (percent-encode UTF-8 bytes only)"
            if request.path.startswith("/api/handles/"):
                raise InvalidHandle(message, handle=request.path[len("/api/handles/") :]) from None
            raise ProtocolError(message) from None
        if request.url_rule is None and request.path.startswith("/api/handles/"):
            # No route takes a line break: say what is wrong with the identifier, not 404.
            try:
                parse_handle(request.path[len("/api/handles/") :])
            except InvalidHandle as exc:
                exc.handle = request.path[len("/api/handles/") :]
                raise

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
            limit = request.max_content_length
            message = (
                f"request body too large: the limit is {limit} bytes"
                if limit
                else "request body too large"
            )
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
    if not request.environ.get("QUERY_STRING"):
        return []  # most reads have no query: skip building request.args
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
    if not request.environ.get("QUERY_STRING"):
        return []
    return [t for t in request.args.getlist("type") if t]


def json_depth_limit() -> int:
    """The JSON nesting limit of the running app (MAX_JSON_DEPTH outside one)."""
    if has_request_context():
        return int(current_app.config.get(JSON_DEPTH_CONFIG, MAX_JSON_DEPTH))
    return MAX_JSON_DEPTH


def client_address() -> str | None:
    """The address the current request came from (None outside a request)."""
    return request.remote_addr if has_request_context() else None


def require_json_media(request: Request) -> None:
    """Refuse a write whose media type is not JSON."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProtocolError(
            f"Content-Type must be application/json, not {request.content_type or 'missing'!r}"
        )


def _not_json(word: str) -> Any:
    # Python's parser takes NaN and Infinity; JSON (RFC 8259) has no such numbers, and an
    # answer that carried them back would break every other client's parser.
    raise ProtocolError(f"request body is not valid JSON: {word} is not JSON")


def decode_json(raw: bytes, limit: int) -> Any:
    """Parse a UTF-8 JSON body, naming what is wrong with it (without the depth walk)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise ProtocolError(f"JSON nesting is deeper than the limit of {limit} levels") from None


def json_body(request: Request) -> Any:
    """The JSON body of a write; the media type must be JSON."""
    require_json_media(request)
    limit = json_depth_limit()
    body = decode_json(request.get_data(cache=False), limit)
    check_json_tree(body, limit)
    return body


def query_float(request: Request, name: str, default: float, low: float, high: float) -> float:
    """A numeric query parameter within [low, high], or the default when absent."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ProtocolError(f"query parameter {name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ProtocolError(f"query parameter {name}={raw} must be between {low:g} and {high:g}")
    return value


def check_json_tree(body: Any, limit: int) -> None:
    """ProtocolError if parsed JSON nests deeper than `limit` or holds a lone surrogate."""
    if json_depth(body, limit, check_text=True) > limit:
        raise ProtocolError(f"JSON nesting is deeper than the limit of {limit} levels")


def json_depth(body: Any, stop: int | None = None, check_text: bool = False) -> int:
    """Levels of arrays/objects in parsed JSON (a scalar is 0); counting stops past `stop`.

    With `check_text`, every string and key is also checked to be valid Unicode.
    """
    level = [body]
    depth = 0
    while level:
        below: list[Any] = []
        nested = False
        for node in level:
            if isinstance(node, dict):
                nested = True
                if check_text:
                    for key in node:
                        _no_surrogate(key)
                below.extend(node.values())
            elif isinstance(node, list):
                nested = True
                below.extend(node)
            elif check_text and isinstance(node, str):
                _no_surrogate(node)
        if not nested:
            break
        depth += 1
        if stop is not None and depth > stop:
            break
        level = below
    return depth


_depth = json_depth  # the name tests/unit/test_template.py compares the batch check with


def _no_surrogate(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtocolError(
            f"a JSON string holds the lone UTF-16 surrogate \\u{ord(text[exc.start]):04x}: "
            "text must be valid Unicode (pair surrogates or send the character itself)"
        ) from None


def values_text_answer(handle: str, values_text: str | bytes) -> Response:
    """values_answer for values given as their JSON text (`[...]`), spliced in as is."""
    # Bytes are taken as UTF-8 already: decoding 7 KB and encoding it again costs more
    # than the rest of the splice.
    text = values_text if isinstance(values_text, bytes) else values_text.encode("utf-8")
    code = ResponseCode.VALUES_NOT_FOUND if text == b"[]" else ResponseCode.SUCCESS
    head = b'{"responseCode":%d,"handle":' % int(code)
    body = head + jsontext.dumps(handle) + b',"values":' + text + b"}"
    return Response(body, status=200, mimetype="application/json")


def values_answer(handle: str, values: Sequence[dict[str, Any]]) -> Response:
    """A resolve answer: responseCode 1, or 200 with no values (both HTTP 200)."""
    code = ResponseCode.SUCCESS if values else ResponseCode.VALUES_NOT_FOUND
    return json_response({"responseCode": int(code), "handle": handle, "values": list(values)})
