"""The top-level node's dashboard (`/`) and its hierarchy-wide statistics (`/api/stats`).

The top-level node knows the hierarchy the way the real one does: its peers from the
topology and the secondary nodes from the HS_SITE values of its prefix registry. It asks
each of them for `/api/stats?scope=node` (and a backup for `/_emulator/status`, its
replication lag) in parallel, through the node's own outbound HTTP session.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, Flask, Response, current_app, render_template

from idcore.identifier import NA_PREFIX, fold
from idcore.site import site_url
from idcore.stats import AGGREGATE, KINDS, node_snapshot
from idcore.store import Store
from idcore.topology import NodeSpec

ASK_TIMEOUT = 1.5  # seconds per node: a dead node must not stall the dashboard
MAX_NODES = 200
STATUS_PATH = "/_emulator/status"
NOTE = (
    "Each node counts the requests it answered: an identifier resolved recursively through a "
    "top-level node counts there and at the secondary node that holds it."
)


@dataclass(frozen=True, slots=True)
class Peer:
    """A node the top-level node knows of and asks for its statistics."""

    name: str
    role: str
    prefix: str
    url: str
    title: str


def known_nodes(store: Store, own: dict[str, Any], top_level: list[NodeSpec]) -> list[Peer]:
    """Other top-level nodes from the topology, then every delegated prefix's node."""
    peers = [
        Peer(s.name, s.role, s.prefix, s.url.rstrip("/"), s.title)
        for s in top_level
        if s.name != own["node"]
    ]
    _total, handles = store.list_handles(NA_PREFIX, 0, MAX_NODES)
    seen = {own["url"].rstrip("/")} | {p.url for p in peers}
    for record in store.get_many([fold(h) for h in handles]):
        if record is None:
            continue
        sites = [v for v in record.values if v.get("type") == "HS_SITE"]
        if not sites:
            continue
        url = site_url(sites[0])
        if url in seen:
            continue
        seen.add(url)
        attrs = {
            a.get("name"): a.get("value") for a in sites[0]["data"]["value"].get("attributes", [])
        }
        prefix = record.handle.split("/", 1)[1]
        name = str(attrs.get("node") or prefix)
        peers.append(Peer(name, "secondary", prefix, url, str(attrs.get("desc") or "")))
    return peers


def _ask(session: requests.Session, peer: Peer) -> dict[str, Any]:
    base = {"node": peer.name, "role": peer.role, "prefix": peer.prefix, "url": peer.url}
    try:
        resp = session.get(f"{peer.url}/api/stats", params={"scope": "node"}, timeout=ASK_TIMEOUT)
        body = resp.json()
        if resp.status_code != 200 or not isinstance(body, dict):
            raise ValueError(f"HTTP {resp.status_code}")
    except (requests.RequestException, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, requests.RequestException) else str(exc)
        return {**base, "title": peer.title, "up": False, "error": reason}
    out: dict[str, Any] = {**body, "up": True}
    out.setdefault("title", peer.title)
    if out.get("role") == "backup":
        out["replication"] = _replication(session, peer.url)
    return out


def _replication(session: requests.Session, url: str) -> dict[str, Any] | None:
    """A backup's replication status, when the node offers one."""
    try:
        resp = session.get(f"{url}{STATUS_PATH}", timeout=ASK_TIMEOUT)
        body = resp.json()
    except (requests.RequestException, ValueError):
        return None
    return body if resp.status_code == 200 and isinstance(body, dict) else None


def _own_replication(app: Flask) -> dict[str, Any] | None:
    if STATUS_PATH not in {r.rule for r in app.url_map.iter_rules()}:
        return None
    resp = app.test_client().get(STATUS_PATH)
    body = resp.get_json(silent=True)
    return body if resp.status_code == 200 and isinstance(body, dict) else None


def _prefix_order(prefix: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in prefix.split("."))


def _sum(nodes: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    totals: dict[str, Any] = {"records": 0}
    merged: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if not node.get("up"):
            continue
        totals["records"] += node.get("records") or 0
        for kind in KINDS:
            for key in (kind, f"{kind}_per_second"):
                totals[key] = totals.get(key, 0) + node.get(key, 0)
        for row in node.get("prefixes", []):
            into = merged.setdefault(row["prefix"], {"prefix": row["prefix"]})
            for key, value in row.items():
                if key != "prefix":
                    into[key] = into.get(key, 0) + value
    for row in [totals, *merged.values()]:
        for kind in KINDS:
            row[f"{kind}_per_second"] = round(row.get(f"{kind}_per_second", 0), 3)
    rows = sorted(merged.values(), key=lambda r: _prefix_order(r["prefix"]))
    return totals, rows


def hierarchy_snapshot(own: dict[str, Any]) -> dict[str, Any]:
    """The whole hierarchy's statistics: this node's own plus every node it knows of."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.extensions["idr.settings"]
    store: Store = app.extensions["idr.records"].store
    session: requests.Session = app.extensions["idr.upstream"].session
    peers = known_nodes(store, own, settings.load_topology().top_level)
    if own.get("role") == "backup":
        own = {**own, "replication": _own_replication(app)}
    answers: list[dict[str, Any]] = []
    if peers:
        with ThreadPoolExecutor(max_workers=min(16, len(peers))) as pool:
            answers = list(pool.map(lambda p: _ask(session, p), peers))
    tops = [n for n in [own, *answers] if n.get("role") in ("primary", "backup")]
    tops.sort(key=lambda n: (n.get("role") != "primary", n.get("node", "")))
    rest = [n for n in answers if n.get("role") not in ("primary", "backup")]
    rest.sort(key=lambda n: _prefix_order(str(n.get("prefix", ""))))
    nodes = [*tops, *rest]
    totals, prefixes = _sum(nodes)
    return {
        "scope": "hierarchy",
        "node": own["node"],
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "window": own.get("window", 0),
        "totals": {**totals, "nodes": len(nodes), "up": sum(1 for n in nodes if n.get("up"))},
        "prefixes": prefixes,
        "nodes": nodes,
        "note": NOTE,
    }


def dashboard_blueprint() -> Blueprint:
    """`GET /`: the hierarchy, its health and counters, and a resolve/trace box."""
    bp = Blueprint("dashboard", __name__)

    @bp.get("/")
    def dashboard() -> Response:
        snapshot = hierarchy_snapshot(node_snapshot())
        html = render_template(
            "dashboard.html", initial=snapshot, node=current_app.config["IDR_NODE"]
        )
        return Response(html, mimetype="text/html")

    return bp


def init_dashboard(app: Flask) -> None:
    """Serve the dashboard and make this node's /api/stats cover the whole hierarchy."""
    app.extensions[AGGREGATE] = hierarchy_snapshot
    app.register_blueprint(dashboard_blueprint())
