"""Emulator controls under /_emulator: health and readiness (later: faults, journal, reset)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app

from idcore.bootstrap import SEED_META
from idcore.handle_api import records
from idcore.web import json_response

STARTED = time.time()


def emulator_blueprint() -> Blueprint:
    """Routes of the emulator controls."""
    bp = Blueprint("emulator", __name__, url_prefix="/_emulator")

    @bp.get("/health")
    def health() -> Response:
        info = current_app.config["IDR_NODE"]
        return json_response({"status": "ok", **info, "uptime": round(time.time() - STARTED, 3)})

    @bp.get("/ready")
    def ready() -> Response:
        store = records().store
        store_ok = store.ping()
        seeded = bool(store_ok and store.get_meta(SEED_META))
        body = {"ready": store_ok and seeded, "store": store_ok, "seeded": seeded}
        return json_response(body, 200 if body["ready"] else 503)

    return bp
