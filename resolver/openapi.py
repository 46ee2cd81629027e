"""The top-level node's part of its OpenAPI document: referral, trace, pages, replication."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flask import Flask

from idcore import openapi
from idcore.openapi import HANDLE, INDEX_FILTER, TYPE_FILTER, answer, errors, query, ref

BOOL = {"type": "boolean"}
HTML = {"text/html": {"schema": {"type": "string"}}}


def trace_schemas() -> dict[str, Any]:
    """clients/trace_schema.json as component schemas (`Trace`, `Trace_handle`, ...)."""
    raw = json.loads(resources.files("clients").joinpath("trace_schema.json").read_text("utf-8"))
    defs = raw.pop("$defs", {})
    for key in ("$schema", "$id"):
        raw.pop(key, None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    openapi.REF.format(model="Trace_" + v.removeprefix("#/$defs/"))
                    if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/")
                    else rewrite(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    out = {"Trace": rewrite(raw)}
    out.update({f"Trace_{name}": rewrite(schema) for name, schema in defs.items()})
    return out


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": HTML}


TRACE_TEXT = dict(HANDLE, description="the identifier to trace from")

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/handles/{text}", "get"): {
        "tags": ["Handle API"],
        "summary": "Resolve an identifier: locally, by recursion (cached) or by referral",
        "parameters": [
            HANDLE,
            INDEX_FILTER,
            TYPE_FILTER,
            query("auth", BOOL, "bypass the cache (go to the secondary node)"),
            query("recursion", BOOL, "false: answer a referral instead of recursing"),
            query("doNotRefer", BOOL, "with recursion=false: 301 instead of a referral"),
        ],
        "responses": {
            "200": answer("the public values matching the filters", ref("ResolveAnswer")),
            "300": answer(
                "prefix referral (responseCode 303): the HS_SITE values of the prefix",
                ref("ResolveAnswer"),
            ),
            **errors(400, 404, 502, 504),
        },
    },
    ("/api/trace/{text}", "get"): {
        "tags": ["Trace"],
        "summary": "The whole trace of an identifier across the hierarchy (idr.trace/1)",
        "parameters": [
            TRACE_TEXT,
            query("deadline", {"type": "number", "minimum": 0.1, "maximum": 10}, "seconds"),
            query("depth", {"type": "integer", "minimum": 0, "maximum": 64}, "hops at most"),
            query(
                "maxRecords", {"type": "integer", "minimum": 1, "maximum": 2000}, "records at most"
            ),
        ],
        "responses": {"200": answer("the trace", ref("Trace")), **errors(400, 404, 502, 504)},
    },
    ("/t/{text}", "get"): {
        "tags": ["Consumer"],
        "summary": "The consumer page of a scanned identifier (HTML, zh or en)",
        "parameters": [TRACE_TEXT, query("lang", {"enum": ["zh", "en"]}, "page language")],
        "responses": {
            "200": _html("the product's history"),
            "400": _html("not a valid identifier"),
            "404": _html("unknown identifier"),
            "502": _html("the node that holds it is unreachable"),
            "504": _html("the node that holds it did not answer in time"),
        },
    },
    ("/t/", "get"): {
        "tags": ["Consumer"],
        "summary": "The consumer page without an identifier (an error page)",
        "parameters": [query("lang", {"enum": ["zh", "en"]}, "page language")],
        "responses": {"400": _html("no identifier given")},
    },
    ("/", "get"): {
        "tags": ["Statistics"],
        "summary": "Dashboard: the hierarchy, its health and counters (HTML)",
        "responses": {"200": _html("the dashboard")},
    },
    ("/api/replication/changes", "get"): {
        "tags": ["Replication"],
        "summary": "The change log after a position (long poll), for the backup node",
        "security": [{"replicationBearer": []}],
        "parameters": [
            query("after", {"type": "integer", "minimum": 0}, "last change already held"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 5000}, "changes"),
            query("wait", {"type": "number", "minimum": 0, "maximum": 30}, "seconds to wait"),
            query("follower", {"type": "string"}, "name of the follower"),
            query("log", {"type": "string"}, "the follower's history id"),
            query("at", {"type": "number", "minimum": 0}, "the follower's clock"),
        ],
        "responses": {
            "200": answer("changes and the log position", {"type": "object"}),
            **errors(400, 401, 403, 501),
        },
    },
    ("/_emulator/status", "get"): {
        "tags": ["Replication"],
        "summary": "Role, epoch, log position and replication lag",
        "responses": {
            "200": answer(
                "the status",
                {
                    "type": "object",
                    "required": ["node", "role", "writable", "last_seq"],
                    "properties": {
                        "node": {"type": "string"},
                        "role": {"type": "string"},
                        "writable": {"type": "boolean"},
                        "last_seq": {"type": "integer"},
                    },
                },
            )
        },
    },
    ("/_emulator/promote", "post"): {
        "tags": ["Replication"],
        "summary": "Make this backup the writable primary",
        "responses": {
            "200": answer("promoted (or already primary)", {"type": "object"}),
            **errors(400, 409),
        },
    },
}


def init_openapi(app: Flask) -> None:
    """Serve the top-level node's `/openapi.json`."""
    openapi.init_app(app, "Top-level node (Handle API)", OPERATIONS, trace_schemas())
