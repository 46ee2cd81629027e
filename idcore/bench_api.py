"""Benchmark routes under /_emulator/bench, served only when IDR_BENCH_ENDPOINTS=1.

`GET /_emulator/bench/fixed` is a node's ceiling: a fixed Handle JSON answer the size of
a demo product record, encoded once, served by the same app, WSGI server and workers as
the real routes but with no store, no parsing and no encoding. The benchmarks in bench/
divide what a real route achieves by what this one does, in the same run.

`GET /_emulator/bench/info` says what is being measured (process, records stored, the
recursion cache's counters); `POST /_emulator/bench/cache/clear` empties the recursion
cache of the worker that answers (a cold start, exact with one worker per node).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Blueprint, Flask, Response, current_app

from idcore.faults import CONTROL_PREFIX
from idcore.handle_api import records
from idcore.jws import sign
from idcore.signing import SIGNATURE_INDEX, SIGNATURE_TYPE, digests
from idcore.web import json_response

BENCH_PREFIX = f"{CONTROL_PREFIX}/bench"
FIXED_PATH = f"{BENCH_PREFIX}/fixed"
FIXED_HANDLE = "88.168.1/BENCH-FIXED-0000001"
_STAMP = "2024-05-15T04:41:00Z"


def _value(index: int, vtype: str, text: str) -> dict[str, Any]:
    data = {"format": "string", "value": text}
    return {"index": index, "type": vtype, "data": data, "ttl": 86400, "timestamp": _STAMP}


def fixed_values() -> list[dict[str, Any]]:
    """The values of the fixed answer: shaped like the demo's wardrobe record (demo data)."""
    admin = {"handle": "88.168.1/ADMIN", "index": 300, "permissions": "111111111111"}
    items = [
        ("name", "三门推拉衣柜（演示） / 3-door sliding wardrobe (demo)"),
        ("category", "衣柜 wardrobe"),
        ("model", "HM-YG-1860"),
        ("serial_no", "BENCH-FIXED-0000001"),
        ("dimensions", "1800×600×2200"),
        ("main_material", "E0级刨花板、中密度纤维板 / E0 particleboard, MDF"),
        ("finish", "水性漆涂装 / waterborne lacquer"),
        ("color", "烟灰 / smoke grey"),
        (
            "manufacturer",
            "重庆华木家具有限公司（演示） / Chongqing Huamu Furniture Co., Ltd. (demo)",
        ),
        ("produced_at", "2024-05-15"),
        ("standard", "GB/T 3324-2017"),
        ("warranty_years", "5"),
    ]
    edges = [
        ("TRACE.BATCH", "88.168.1/BATCH-2024-0512"),
        ("TRACE.INPUT", "88.169.1/BOARD-LOT-2024-0305"),
        ("TRACE.INPUT", "88.170.1/HINGE-LOT-2024-0211"),
        ("TRACE.INSPECTION", "88.171.1/QC-2024-000123"),
    ]
    values = [_value(1, "URL", f"http://127.0.0.1:8000/t/{FIXED_HANDLE}")]
    values.append(
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {"format": "admin", "value": admin},
            "ttl": 86400,
            "timestamp": _STAMP,
        }
    )
    values.append(_value(1001, "IDIS.TEMPLATE", "furniture.product@1"))
    values += [_value(2000 + i, code, text) for i, (code, text) in enumerate(items)]
    values += [_value(3000 + i, rel, target) for i, (rel, target) in enumerate(edges)]
    # Signed as a node signs every record (idcore.signing), by a fixed bench-only key.
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"idr bench fixed").digest())
    payload = {
        "iss": "furniture",
        "sub": FIXED_HANDLE,
        "iat": 1715748060,
        "prefix": "88.168",
        "digests": digests(values),
    }
    values.append(_value(SIGNATURE_INDEX, SIGNATURE_TYPE, sign(payload, key, "bench-fixed")))
    return values


def fixed_body() -> bytes:
    """The fixed answer, encoded as idcore.web.json_response encodes every answer."""
    body = {"responseCode": 1, "handle": FIXED_HANDLE, "values": fixed_values()}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def bench_blueprint() -> Blueprint:
    """The benchmark routes."""
    bp = Blueprint("bench", __name__, url_prefix=BENCH_PREFIX)
    body = fixed_body()

    @bp.get("/fixed")
    def fixed() -> Response:
        return Response(body, mimetype="application/json")

    @bp.get("/info")
    def info() -> Response:
        upstream = current_app.extensions.get("idr.upstream")
        cache = None
        if upstream is not None:
            stats = upstream.cache.stats
            cache = {"size": len(upstream.cache), "hits": stats.hits, "misses": stats.misses}
        node = current_app.config["IDR_NODE"]
        return json_response(
            {
                "pid": os.getpid(),
                "node": node["node"],
                "records": records().store.count(),
                "cache": cache,
            }
        )

    @bp.post("/cache/clear")
    def clear_cache() -> Response:
        upstream = current_app.extensions.get("idr.upstream")
        cleared = 0
        if upstream is not None:
            cleared = len(upstream.cache)
            upstream.cache.clear()
        return json_response({"pid": os.getpid(), "cleared": cleared})

    return bp


def init_app(app: Flask, enabled: bool) -> None:
    """Register the benchmark routes if `enabled` (NodeSettings.bench_endpoints)."""
    if enabled:
        app.register_blueprint(bench_blueprint())
