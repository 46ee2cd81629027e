"""The secondary node's part of its OpenAPI document: templates, batch, multi-get, enterprises."""

from __future__ import annotations

from typing import Any

from flask import Flask

from idcore import openapi
from idcore.batch import MAX_BATCH
from idcore.openapi import (
    BASIC,
    answer,
    errors,
    json_content,
    model_schemas,
    path_param,
    query,
    ref,
)
from idcore.template import Template
from secondary_nodes.enterprises import EnterpriseCreated, EnterpriseRequest
from secondary_nodes.lookup import MAX_HANDLES

NAME = path_param("name", "template name <family>@<version>, e.g. furniture.product@1")
OVERWRITE = query("overwrite", {"type": "boolean"}, "false: 409 if it exists")

SCHEMAS: dict[str, Any] = {
    **model_schemas([(Template, "validation"), (EnterpriseRequest, "validation")]),
    "TemplateShown": {
        "type": "object",
        "required": ["name", "items"],
        "properties": {"handle": {"type": "string"}, "name": {"type": "string"}},
    },
    "TemplateList": {
        "type": "object",
        "required": ["responseCode", "prefix", "totalCount", "templates"],
        "properties": {
            "responseCode": {"const": 1},
            "prefix": {"type": "string"},
            "totalCount": {"type": "integer"},
            "templates": {"type": "array", "items": ref("TemplateShown")},
        },
    },
    "TemplateAnswer": {
        "type": "object",
        "required": ["responseCode", "handle", "template"],
        "properties": {
            "responseCode": {"const": 1},
            "handle": {"type": "string"},
            "template": ref("TemplateShown"),
        },
    },
    "TemplateWritten": {
        "type": "object",
        "required": ["responseCode", "handle", "name"],
        "properties": {
            "responseCode": {"const": 1},
            "handle": {"type": "string"},
            "name": {"type": "string"},
        },
    },
    "BatchItem": {
        "type": "object",
        "required": ["handle"],
        "description": "Handle form `{handle, values}` or SNMS form `{handle, templateVersion, "
        "value}`",
        "properties": {
            "handle": {"type": "string"},
            "values": {"type": "array", "items": ref("HandleValue")},
            "value": {"type": "array", "items": ref("HandleValue")},
            "templateVersion": {"type": "string"},
        },
    },
    "BatchBody": {
        "oneOf": [
            {
                "type": "object",
                "required": ["handles"],
                "properties": {
                    "handles": {
                        "type": "array",
                        "maxItems": MAX_BATCH,
                        "items": ref("BatchItem"),
                    },
                    "overwrite": {"type": "boolean"},
                },
            },
            {"type": "array", "maxItems": MAX_BATCH, "items": ref("BatchItem")},
        ]
    },
    "BatchAnswer": {
        "type": "object",
        "required": ["responseCode", "total", "succeeded", "failed", "results"],
        "properties": {
            "responseCode": {"const": 1},
            "total": {"type": "integer"},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["handle", "responseCode", "message"],
                    "properties": {
                        "handle": {"type": ["string", "null"]},
                        "responseCode": {"type": "integer"},
                        "message": {"type": "string"},
                        "problems": {"type": "array"},
                    },
                },
            },
        },
    },
}
SCHEMAS.update(model_schemas([(EnterpriseCreated, "serialization")]))
SCHEMAS["MultiGetAnswer"] = {
    "type": "object",
    "required": ["responseCode", "results"],
    "properties": {
        "responseCode": {"const": 1},
        "results": {
            "type": "array",
            "description": "one per identifier asked for, in order: what its own GET answers",
            "items": {
                "type": "object",
                "required": ["handle", "responseCode", "status"],
                "properties": {
                    "handle": {"type": "string"},
                    "responseCode": {"type": "integer"},
                    "status": {
                        "type": ["integer", "null"],
                        "description": "the HTTP status its own GET would have had",
                    },
                    "values": {"type": "array", "items": ref("HandleValue")},
                    "message": {"type": "string"},
                    "dropped": {
                        "type": "boolean",
                        "description": "an injected fault dropped this identifier's connection",
                    },
                },
            },
        },
    },
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/templates", "get"): {
        "tags": ["Templates"],
        "summary": "The data templates of this node",
        "responses": {"200": answer("every template", ref("TemplateList"))},
    },
    ("/api/templates/{name}", "get"): {
        "tags": ["Templates"],
        "summary": "One template",
        "parameters": [NAME],
        "responses": {"200": answer("the template", ref("TemplateAnswer")), **errors(400, 404)},
    },
    ("/api/templates/{name}", "put"): {
        "tags": ["Templates"],
        "summary": "Register or replace a template (node admin)",
        "security": BASIC,
        "parameters": [NAME, OVERWRITE],
        "requestBody": {"required": True, "content": json_content(ref("Template"))},
        "responses": {
            "200": answer("replaced", ref("TemplateWritten")),
            "201": answer("created", ref("TemplateWritten")),
            **errors(400, 401, 403, 409, 413, 503),
        },
    },
    ("/api/templates/{name}", "delete"): {
        "tags": ["Templates"],
        "summary": "Remove a template (node admin)",
        "security": BASIC,
        "parameters": [NAME],
        "responses": {
            "200": answer("removed", ref("TemplateWritten")),
            **errors(400, 401, 403, 404, 503),
        },
    },
    ("/api/batch/handles", "post"): {
        "tags": ["Batch"],
        "summary": f"Register up to {MAX_BATCH} identifiers, answered item by item",
        "security": BASIC,
        "parameters": [OVERWRITE],
        "requestBody": {"required": True, "content": json_content(ref("BatchBody"))},
        "responses": {
            "200": answer("one result per item (check `failed`)", ref("BatchAnswer")),
            **errors(400, 401, 403, 413, 503),
        },
    },
    ("/api/batch/handles", "get"): {
        "tags": ["Batch"],
        "summary": f"Resolve up to {MAX_HANDLES} identifiers of this node in one request",
        "description": "Each item answers as `GET /api/handles/{id}` would; fault rules "
        "apply to each identifier as to its own GET. The top-level node's traces use it.",
        "parameters": [
            query(
                "handle",
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "an identifier (repeat the parameter for each)",
                required=True,
            )
        ],
        "responses": {
            "200": answer("one result per identifier", ref("MultiGetAnswer")),
            **errors(400),
        },
    },
    ("/api/enterprises", "post"): {
        "tags": ["Administration"],
        "summary": "Register an enterprise prefix with its admin handle and secret (node admin)",
        "description": "Creates 0.NA/<prefix> and <prefix>/ADMIN, both or neither.",
        "security": BASIC,
        "requestBody": {"required": True, "content": json_content(ref("EnterpriseRequest"))},
        "responses": {
            "201": answer("registered", ref("EnterpriseCreated")),
            **errors(400, 401, 403, 409, 413, 503),
        },
    },
}


def init_openapi(app: Flask) -> None:
    """Serve the secondary node's `/openapi.json`."""
    openapi.init_app(app, "Secondary node (Handle API)", OPERATIONS, SCHEMAS)
