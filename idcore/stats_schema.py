"""The JSON Schema of `GET /api/stats` (idcore/stats.py), the OpenAPI document's `Stats`."""

from __future__ import annotations

from typing import Any

_COUNTS: dict[str, Any] = {
    "registrations": {"type": "integer", "minimum": 0, "description": "identifiers created"},
    "registrations_per_second": {"type": "number", "minimum": 0},
    "resolutions": {"type": "integer", "minimum": 0, "description": "resolve requests answered"},
    "resolutions_per_second": {"type": "number", "minimum": 0},
}
_PREFIX_ROW: dict[str, Any] = {
    "type": "object",
    "required": ["prefix", *_COUNTS],
    "properties": {"prefix": {"type": "string"}, **_COUNTS},
}
_NODE: dict[str, Any] = {
    "type": "object",
    "description": "One node (scope=node); in a hierarchy's `nodes`, a node that did not "
    "answer has only node, role, prefix, url, title, up (false) and error.",
    "required": ["node", "role", "prefix", "url", "up"],
    "properties": {
        "scope": {"const": "node"},
        "node": {"type": "string"},
        "role": {"type": "string"},
        "prefix": {"type": "string"},
        "url": {"type": "string"},
        "title": {"type": "string"},
        "up": {"type": "boolean"},
        "error": {"type": "string"},
        "started": {"type": "string", "description": "when the counters started (UTC)"},
        "uptime": {"type": "number"},
        "window": {"type": "number", "description": "seconds the per-second rates cover"},
        **_COUNTS,
        "resolutions_by_result": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "ok, not_found, referral, error",
        },
        "records": {"type": ["integer", "null"], "description": "records the node holds"},
        "hosted_prefixes": {"type": "array", "items": {"type": "string"}},
        "store_error": {"type": "string"},
        "prefixes": {"type": "array", "items": _PREFIX_ROW},
        "replication": {
            "type": ["object", "null"],
            "description": "a backup's /_emulator/status (hierarchy scope)",
        },
    },
}
STATS_SCHEMA: dict[str, Any] = {
    "description": "Registrations and resolutions of this node (scope=node, and always on a "
    "secondary node) or, on a top-level node by default, of the whole hierarchy.",
    "oneOf": [
        _NODE,
        {
            "type": "object",
            "required": ["scope", "node", "totals", "prefixes", "nodes"],
            "properties": {
                "scope": {"const": "hierarchy"},
                "node": {"type": "string", "description": "the node that added it up"},
                "generated": {"type": "string"},
                "window": {"type": "number"},
                "totals": {
                    "type": "object",
                    "properties": {
                        **_COUNTS,
                        "records": {"type": "integer"},
                        "nodes": {"type": "integer"},
                        "up": {"type": "integer"},
                    },
                },
                "prefixes": {"type": "array", "items": _PREFIX_ROW},
                "nodes": {"type": "array", "items": _NODE},
                "note": {"type": "string"},
            },
        },
    ],
}
"""The JSON Schema of `GET /api/stats` (the OpenAPI document's `Stats`)."""
