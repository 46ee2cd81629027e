"""The OpenAPI 3.1 document of a node, served at `GET /openapi.json`.

The document is built from the app's own routes (`app.url_map`) and a catalogue of
operations: the shared ones here (Handle API, emulator controls, stats), the node
kind's own ones passed to `init_app` (resolver/openapi.py, secondary_nodes/openapi.py).
Request and answer schemas come from the pydantic models where they exist
(`model_json_schema`), hand-written JSON Schema elsewhere. A route without a catalogue
entry is left out here and caught by tests/integration/test_openapi.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from idcore.faults import FaultRule
from idcore.identifier import MAX_HANDLE_BYTES, MAX_PREFIX_BYTES
from idcore.stats_schema import STATS_SCHEMA
from idcore.values import AdminRef, HandleRef, HandleValue, ValueData
from idcore.web import json_response

Operation = dict[str, Any]
Operations = Mapping[tuple[str, str], Operation]
"""(OpenAPI path, lower-case method) → OpenAPI operation object."""

CATALOGUE = "idr.openapi"
SKIPPED_ENDPOINTS = frozenset({"static"})
"""Flask's built-in static route: no node serves files from it."""

REF = "#/components/schemas/{model}"


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": REF.format(model=name)}


def model_schemas(models: Iterable[tuple[type[BaseModel], JsonSchemaMode]]) -> dict[str, Any]:
    """Component schemas of pydantic models (and the models they use), by model name."""
    pairs = list(models)
    _, top = models_json_schema(pairs, ref_template=REF)
    defs: dict[str, Any] = dict(top.get("$defs", {}))
    return defs


def json_content(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A `content` object with one JSON media type."""
    return {"application/json": {"schema": dict(schema)}}


def answer(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A response object (JSON when a schema is given)."""
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = json_content(schema)
    return out


def errors(*statuses: int) -> dict[str, Any]:
    """Handle JSON error answers for the given HTTP statuses, plus a default."""
    out = {str(s): answer(_STATUS_TEXT.get(s, "error"), ref("HandleError")) for s in statuses}
    out["default"] = answer("any other error, as Handle JSON", ref("HandleError"))
    return out


def query(
    name: str, schema: Mapping[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    """A query parameter (arrays repeat the name: `index=1&index=2`)."""
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": dict(schema),
    }
    if schema.get("type") == "array":
        param["style"] = "form"
        param["explode"] = True
    return param


def path_param(name: str, description: str) -> dict[str, Any]:
    """A path parameter; identifiers may hold '/' (the route takes the rest of the path)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


_STATUS_TEXT = {
    300: "referral (responseCode 303)",
    400: "malformed request, identifier or value (responseCode 4, 102, 202, 200, 301)",
    401: "credentials needed (responseCode 402)",
    403: "wrong secret, unusable credentials or no right (responseCode 403, 404, 401)",
    404: "not found (responseCode 100; unknown path: 4)",
    405: "method not allowed (responseCode 5)",
    409: "already exists (responseCode 101, 201)",
    413: "request body larger than the node's limit (responseCode 4)",
    503: "too busy: too many failed logins from this client (responseCode 3, Retry-After)",
}

# -- schemas written by hand (answers) -----------------------------------------------------

_STRING_OR_INT = {"type": ["integer", "string"]}

BASE_SCHEMAS: dict[str, Any] = {
    "HandleError": {
        "type": "object",
        "description": "Every error answer: a Handle responseCode and a message for people.",
        "required": ["responseCode", "message"],
        "properties": {
            "responseCode": {"type": "integer"},
            "handle": {"type": "string", "description": "the identifier as the client sent it"},
            "message": {"type": "string", "minLength": 1},
            "problems": {"type": "array", "description": "every invalid value, one line each"},
            "right": {"type": "string", "description": "the HS_ADMIN permission missing (401)"},
            "retryAfter": {"type": "integer", "description": "seconds to wait (responseCode 3)"},
        },
    },
    "StoredValue": {
        "type": "object",
        "description": "A value as a node answers it.",
        "required": ["index", "type", "data", "ttl", "timestamp"],
        "properties": {
            "index": {"type": "integer", "minimum": 1},
            "type": {"type": "string"},
            "data": {
                "type": "object",
                "required": ["format", "value"],
                "properties": {"format": {"type": "string"}, "value": {}},
            },
            "ttl": _STRING_OR_INT,
            "timestamp": {"type": "string"},
            "permissions": {"type": "string", "pattern": "^[01]{4}$"},
        },
    },
    "ResolveAnswer": {
        "type": "object",
        "required": ["responseCode", "handle", "values"],
        "properties": {
            "responseCode": {"enum": [1, 200], "description": "200: no value matched"},
            "handle": {"type": "string"},
            "values": {"type": "array", "items": ref("StoredValue")},
        },
    },
    "WriteAnswer": {
        "type": "object",
        "required": ["responseCode", "handle"],
        "properties": {"responseCode": {"const": 1}, "handle": {"type": "string"}},
    },
    "HandleList": {
        "type": "object",
        "required": ["prefix", "totalCount", "handles"],
        "properties": {
            "prefix": {"type": "string"},
            "totalCount": {"type": "string", "pattern": "^[0-9]+$"},
            "handles": {"type": "array", "items": {"type": "string"}},
        },
    },
    "PutBody": {
        "description": 'Values to write: `{"values": [...]}` (a `handle`, if given, must '
        "equal the path) or a bare array. `data` may be a bare string (format string).",
        "oneOf": [
            {
                "type": "object",
                "required": ["values"],
                "properties": {
                    "handle": {"type": "string"},
                    "values": {"type": "array", "items": ref("HandleValue")},
                },
            },
            {"type": "array", "items": ref("HandleValue")},
        ],
    },
    "FaultList": {
        "type": "object",
        "required": ["faults"],
        "properties": {"faults": {"type": "array", "items": {"type": "object"}}},
    },
    "FaultRules": {
        "description": 'One rule, a list, or `{"faults": [...]}`.',
        "oneOf": [
            ref("FaultRule"),
            {"type": "array", "items": ref("FaultRule")},
            {
                "type": "object",
                "required": ["faults"],
                "properties": {"faults": {"type": "array", "items": ref("FaultRule")}},
            },
        ],
    },
    "FaultLog": {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "items": {"type": "object"}}},
    },
    "Journal": {
        "type": "object",
        "required": ["entries"],
        "properties": {
            "capacity": {"type": "integer"},
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["seq", "method", "path", "status"],
                    "properties": {
                        "seq": {"type": "integer"},
                        "method": {"type": "string"},
                        "path": {"type": "string"},
                        "status": {"type": ["integer", "null"]},
                        "responseCode": {"type": ["integer", "null"]},
                    },
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "node", "role", "prefix", "url", "uptime"],
        "properties": {
            "status": {"const": "ok"},
            "node": {"type": "string"},
            "role": {"type": "string"},
            "prefix": {"type": "string"},
            "url": {"type": "string"},
            "uptime": {"type": "number"},
        },
    },
    "Ready": {
        "type": "object",
        "required": ["ready", "store", "seeded"],
        "properties": {
            "ready": {"type": "boolean"},
            "store": {"type": "boolean"},
            "seeded": {"type": "boolean"},
        },
    },
    "ResetAnswer": {
        "type": "object",
        "required": ["responseCode", "node", "records", "faults"],
        "properties": {
            "responseCode": {"const": 1},
            "node": {"type": "string"},
            "records": {"type": "integer"},
            "faults": {"type": "integer"},
        },
    },
    "Stats": STATS_SCHEMA,
}
BASE_SCHEMAS.update(
    model_schemas(
        [
            (HandleValue, "validation"),
            (ValueData, "validation"),
            (AdminRef, "validation"),
            (HandleRef, "validation"),
            (FaultRule, "validation"),
        ]
    )
)
# PUT bodies may give `data` as a bare string (PROTOCOL.md); the model's schema cannot say so.
BASE_SCHEMAS["HandleValue"]["properties"]["data"] = {
    "anyOf": [ref("ValueData"), {"type": "string"}]
}

# -- operations every node has ---------------------------------------------------------------

HANDLE = path_param(
    "text",
    f"the identifier `prefix/suffix` (at most {MAX_HANDLE_BYTES} bytes, prefix at most "
    f"{MAX_PREFIX_BYTES}); without '/' the prefix record 0.NA/<text>",
)
INDEX_FILTER = query(
    "index", {"type": "array", "items": {"type": "integer", "minimum": 0}}, "value indexes"
)
TYPE_FILTER = query(
    "type",
    {"type": "array", "items": {"type": "string"}},
    "value types; one ending in '.' also matches its subtypes",
)
BOOL = {"type": "boolean"}
BASIC: list[dict[str, list[str]]] = [{"handleBasic": []}]

HANDLE_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/api/handles/{text}", "get"): {
        "tags": ["Handle API"],
        "summary": "Resolve an identifier",
        "parameters": [
            HANDLE,
            INDEX_FILTER,
            TYPE_FILTER,
            query("auth", BOOL, "bypass caches (go to the source)"),
        ],
        "responses": {
            "200": answer("the public values matching the filters", ref("ResolveAnswer")),
            **errors(400, 404),
        },
    },
    ("/api/handles/{text}", "put"): {
        "tags": ["Handle API"],
        "summary": "Create, replace or partially update a record (HS_ADMIN rights checked)",
        "security": BASIC,
        "parameters": [
            HANDLE,
            query(
                "index",
                {"type": "array", "items": {"type": "string", "pattern": "^[0-9]+$|^various$"}},
                "update just these values (must equal the body's indexes), or `various`",
            ),
            query("overwrite", BOOL, "false: 409 if the handle or an index exists (true)"),
            query("mintNewSuffix", BOOL, "append a fresh suffix to the path's"),
        ],
        "requestBody": {"required": True, "content": json_content(ref("PutBody"))},
        "responses": {
            "200": answer("replaced or updated", ref("WriteAnswer")),
            "201": answer("created", ref("WriteAnswer")),
            **errors(400, 401, 403, 404, 409, 413, 503),
        },
    },
    ("/api/handles/{text}", "delete"): {
        "tags": ["Handle API"],
        "summary": "Delete a record, or only the listed values",
        "security": BASIC,
        "parameters": [HANDLE, INDEX_FILTER],
        "responses": {
            "200": answer("deleted", ref("WriteAnswer")),
            **errors(400, 401, 403, 404, 503),
        },
    },
    ("/api/handles", "get"): {
        "tags": ["Handle API"],
        "summary": "List the handles under exactly one prefix, a page at a time",
        "parameters": [
            query("prefix", {"type": "string", "minLength": 1}, "e.g. 88.168.1", True),
            query("page", {"type": "integer", "minimum": 0}, "page number, from 0"),
            query("pageSize", {"type": "integer", "minimum": 1}, "handles per page"),
        ],
        "responses": {"200": answer("one page", ref("HandleList")), **errors(400)},
    },
}

_LIMIT = query("limit", {"type": "integer", "minimum": 0}, "at most this many, newest")
EMULATOR_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/_emulator/health", "get"): {
        "tags": ["Emulator"],
        "summary": "Liveness and what this node is",
        "responses": {"200": answer("alive", ref("Health"))},
    },
    ("/_emulator/ready", "get"): {
        "tags": ["Emulator"],
        "summary": "Readiness: the store answers and holds its seed",
        "responses": {
            "200": answer("ready", ref("Ready")),
            "503": answer("not ready yet", ref("Ready")),
        },
    },
    ("/_emulator/faults", "get"): {
        "tags": ["Emulator"],
        "summary": "The fault rules, with ids, seeds and counters",
        "responses": {"200": answer("the rules", ref("FaultList"))},
    },
    ("/_emulator/faults", "put"): {
        "tags": ["Emulator"],
        "summary": "Replace every fault rule",
        "requestBody": {"required": True, "content": json_content(ref("FaultRules"))},
        "responses": {"200": answer("the rules now", ref("FaultList")), **errors(400)},
    },
    ("/_emulator/faults", "post"): {
        "tags": ["Emulator"],
        "summary": "Add fault rules",
        "requestBody": {"required": True, "content": json_content(ref("FaultRules"))},
        "responses": {"201": answer("the rules added", ref("FaultList")), **errors(400)},
    },
    ("/_emulator/faults", "delete"): {
        "tags": ["Emulator"],
        "summary": "Remove every fault rule",
        "responses": {"200": answer("no rules left", ref("FaultList"))},
    },
    ("/_emulator/faults/{rule_id}", "delete"): {
        "tags": ["Emulator"],
        "summary": "Remove one fault rule",
        "parameters": [path_param("rule_id", "the rule's id")],
        "responses": {"200": answer("the rules left", ref("FaultList")), **errors(404)},
    },
    ("/_emulator/faults/log", "get"): {
        "tags": ["Emulator"],
        "summary": "The faults injected so far, oldest first",
        "parameters": [_LIMIT],
        "responses": {"200": answer("the log", ref("FaultLog")), **errors(400)},
    },
    ("/_emulator/journal", "get"): {
        "tags": ["Emulator"],
        "summary": "Recent requests, oldest first",
        "parameters": [
            _LIMIT,
            query("since", {"type": "integer", "minimum": 0}, "only entries after this seq"),
        ],
        "responses": {"200": answer("the journal", ref("Journal")), **errors(400)},
    },
    ("/_emulator/journal", "delete"): {
        "tags": ["Emulator"],
        "summary": "Forget the recorded requests",
        "responses": {"200": answer("emptied", ref("Journal"))},
    },
    ("/_emulator/reset", "post"): {
        "tags": ["Emulator"],
        "summary": "Restore the seeded data; clear caches, journal and (unless kept) faults",
        "parameters": [query("keepFaults", BOOL, "keep the fault rules")],
        "responses": {"200": answer("reset", ref("ResetAnswer")), **errors(400, 501)},
    },
    ("/api/stats", "get"): {
        "tags": ["Statistics"],
        "summary": "Registrations and resolutions: totals and rates",
        "parameters": [
            query("scope", {"enum": ["node", "hierarchy"]}, "this node or the hierarchy")
        ],
        "responses": {"200": answer("the statistics", ref("Stats")), **errors(400)},
    },
    ("/metrics", "get"): {
        "tags": ["Statistics"],
        "summary": "Prometheus metrics",
        "responses": {
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
    ("/_emulator/bench/fixed", "get"): {
        "tags": ["Benchmark"],
        "summary": "A fixed resolve answer with no work behind it (IDR_BENCH_ENDPOINTS=1)",
        "responses": {"200": answer("the fixed answer", ref("ResolveAnswer"))},
    },
    ("/_emulator/bench/info", "get"): {
        "tags": ["Benchmark"],
        "summary": "This worker process (IDR_BENCH_ENDPOINTS=1)",
        "responses": {"200": answer("process facts", {"type": "object"})},
    },
    ("/_emulator/bench/cache/clear", "post"): {
        "tags": ["Benchmark"],
        "summary": "Clear this worker's caches (IDR_BENCH_ENDPOINTS=1)",
        "responses": {"200": answer("cleared", {"type": "object"})},
    },
}

_RULE_ARG = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")


def openapi_path(rule: str) -> str:
    """Flask's `/api/handles/<path:text>` as OpenAPI's `/api/handles/{text}`."""
    return _RULE_ARG.sub(r"{\1}", rule)


def app_operations(app: Flask) -> list[tuple[str, str]]:
    """Every (OpenAPI path, method) the app routes, HEAD and OPTIONS aside."""
    found: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS:
            continue
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((openapi_path(rule.rule), method.lower()))
    return sorted(found)


def build_document(
    app: Flask, operations: Operations, schemas: Mapping[str, Any], title: str
) -> dict[str, Any]:
    """The OpenAPI document of the app's routes that the catalogue describes."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method in app_operations(app):
        operation = operations.get((path, method))
        if operation is None:
            continue
        op = deepcopy(operation)
        op.setdefault("operationId", f"{method}{_camel(path)}")
        paths.setdefault(path, {})[method] = op
    info = app.config.get("IDR_NODE", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": f"Node {info.get('node', '?')} ({info.get('role', '?')}, prefix "
            f"{info.get('prefix', '?')}) of the Chongqing identifier-resolution emulator. "
            "Demo data. Errors are Handle JSON with a responseCode (PROTOCOL.md).",
        },
        "servers": [{"url": str(info.get("url", "/"))}],
        "paths": paths,
        "components": {
            "schemas": deepcopy(dict(schemas)),
            "securitySchemes": {
                "handleBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "user `300:<prefix>/ADMIN` (':' may be sent as %3A), "
                    "password its secret (HS_SECKEY)",
                },
                "replicationBearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _camel(path: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", path)
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def init_app(
    app: Flask,
    title: str,
    operations: Operations | None = None,
    schemas: Mapping[str, Any] | None = None,
) -> None:
    """Serve `/openapi.json`: the shared operations plus the node kind's own."""
    catalogue: dict[tuple[str, str], Operation] = {**HANDLE_OPERATIONS, **EMULATOR_OPERATIONS}
    catalogue.update(operations or {})
    catalogue[("/openapi.json", "get")] = {
        "tags": ["Meta"],
        "summary": "This document",
        "responses": {"200": answer("the OpenAPI 3.1 document", {"type": "object"})},
    }
    all_schemas = {**BASE_SCHEMAS, **(schemas or {})}
    app.extensions[CATALOGUE] = (catalogue, all_schemas, title)
    bp = Blueprint("openapi", __name__)

    @bp.get("/openapi.json")
    def openapi_json() -> Response:
        ops, defs, name = current_app.extensions[CATALOGUE]
        return json_response(build_document(current_app, ops, defs, name))

    app.register_blueprint(bp)
