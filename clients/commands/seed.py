"""`idr seed --products N`: write N more demo products, with their lots and reports, in batches.

Reads data/hierarchy.json (written by `idr up`) for each secondary node's URL and admin
credentials, generates the records (idcore.demo.extra_products, deterministic from
--seed and --start), makes sure each node has the templates they name, and writes them
through each node's `POST /api/batch/handles` in chunks of at most 2000, the nodes in
parallel. Prints what was written and how fast.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from rich.table import Table

from clients.answer import json_answer
from clients.console import EXIT_HANDLE_ERROR, EXIT_OK, EXIT_USAGE, data_dir, err, out
from clients.launcher import read_hierarchy
from idcore.credentials import basic_header
from idcore.demo import Pairs, extra_products, templates_for
from idcore.errors import NodeUnreachable
from idcore.topology import NodeSpec, Topology

REQUEST_TIMEOUT = 300.0
SLICE_PRODUCTS = 1500  # products generated at a time (a multiple of 20: whole batches)
QUEUED_CHUNKS = 4  # chunks waiting per node
MAX_BATCH = 2000  # items per batch request (PROTOCOL.md; idcore.batch.MAX_BATCH)


@dataclass
class NodeResult:
    """What one node took."""

    name: str
    url: str
    sent: int = 0
    written: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _topology(info: dict[str, Any]) -> Topology:
    nodes = []
    for node in info["nodes"]:
        url = urlsplit(node["url"])
        nodes.append(
            NodeSpec(
                name=node["name"],
                role=node["role"],
                prefix=node["prefix"],
                host=url.hostname or "127.0.0.1",
                port=url.port or 80,
                title=node.get("title", ""),
            )
        )
    return Topology(nodes=nodes)


def _ensure_templates(
    session: requests.Session, url: str, auth: str, pairs: Pairs, known: set[str]
) -> set[str]:
    """PUT every template the records name that the node lacks; the names now known."""
    names = set()
    for template in templates_for(pairs):
        names.add(template.name)
        if template.name in known:
            continue
        path = f"{url}/api/templates/{template.name}"
        if session.get(path, timeout=REQUEST_TIMEOUT).status_code == 200:
            continue
        resp = session.put(
            path,
            data=json.dumps(template.to_json(), ensure_ascii=False).encode(),
            headers={"Authorization": auth, "Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
        json_answer(resp, f"registering template {template.name} at {url}")
    return names


class _NodeWriter(threading.Thread):
    """Writes the chunks queued for one node, in order, over one HTTP session."""

    def __init__(self, node: dict[str, Any]) -> None:
        super().__init__(name=f"seed-{node['name']}", daemon=True)
        self.node = node
        self.result = NodeResult(node["name"], node["url"])
        self.error: BaseException | None = None
        self.chunks: queue.Queue[Pairs | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._auth = basic_header(node["admin"], node["secret"])

    def run(self) -> None:
        ensured: set[str] = set()
        with requests.Session() as session:
            while True:
                part = self.chunks.get()
                if part is None:
                    return
                if self.error is not None:
                    continue  # keep draining so the producer never blocks
                began = time.perf_counter()
                try:
                    ensured |= _ensure_templates(
                        session, self.node["url"], self._auth, part, ensured
                    )
                    self._post(session, part)
                except requests.RequestException as exc:
                    url = self.node["url"]
                    self.error = NodeUnreachable(f"{self.node['name']} ({url}): {exc}", url)
                except BaseException as exc:  # reported by the main thread
                    self.error = exc
                self.result.seconds += time.perf_counter() - began

    def _post(self, session: requests.Session, part: Pairs) -> None:
        body = {"handles": [{"handle": h, "values": v} for h, v in part]}
        resp = session.post(
            f"{self.node['url']}/api/batch/handles",
            data=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
        answer = json_answer(resp, f"batch at {self.node['url']}")
        self.result.sent += len(part)
        self.result.written += int(answer["succeeded"])
        self.result.failed.extend(r for r in answer["results"] if r["responseCode"] != 1)


def _next_start(node: dict[str, Any], enterprise: str) -> int:
    """A first serial no earlier run used: the number of records under the maker's prefix."""
    try:
        resp = requests.get(
            f"{node['url']}/api/handles",
            params={"prefix": enterprise, "page": "0", "pageSize": "1"},
            timeout=10,
        )
    except requests.RequestException as exc:
        raise NodeUnreachable(f"{node['name']} ({node['url']}): {exc}", node["url"]) from exc
    return int(json_answer(resp, f"counting {enterprise}")["totalCount"])


def run(args: argparse.Namespace) -> int:
    """Generate and write the products; exit 0 when every record was written."""
    if args.products < 0:
        err.print("[red]--products must be zero or more[/red]")
        return EXIT_USAGE
    if not 1 <= args.chunk <= MAX_BATCH:
        err.print(f"[red]--chunk must be between 1 and {MAX_BATCH}[/red]")
        return EXIT_USAGE
    info = read_hierarchy(data_dir(args))
    topology = _topology(info)
    nodes = {n["name"]: n for n in info["nodes"]}
    top = args.top or next((n["url"] for n in info["nodes"] if n["role"] == "primary"), None)
    furniture = next((s for s in topology.secondaries if s.name == "furniture"), None)
    if furniture is None:
        err.print("[red]the running hierarchy has no 'furniture' node to make products on[/red]")
        return EXIT_USAGE
    start = (
        args.start
        if args.start is not None
        else _next_start(nodes["furniture"], f"{furniture.prefix}.1")
    )
    writers: dict[str, _NodeWriter] = {}
    total = 0
    generated = 0.0
    first_product: str | None = None
    last_product: str | None = None
    began = time.perf_counter()
    # Generate a slice, queue it per node in chunks, go on: the nodes write meanwhile and
    # memory holds a few chunks per node, whatever N is.
    for first in range(start, start + args.products, SLICE_PRODUCTS):
        count = min(SLICE_PRODUCTS, start + args.products - first)
        made = time.perf_counter()
        per_node = extra_products(topology, args.seed, first, count, top)
        generated += time.perf_counter() - made
        for name, pairs in per_node.items():
            total += len(pairs)
            writer = writers.get(name)
            if writer is None:
                writer = writers[name] = _NodeWriter(nodes[name])
                writer.start()
            for at in range(0, len(pairs), args.chunk):
                writer.chunks.put(pairs[at : at + args.chunk])
        found = [h for h, _ in per_node.get("furniture", []) if "/WARD-" in h]
        if found:
            first_product = first_product or found[0]
            last_product = found[-1]
    for writer in writers.values():
        writer.chunks.put(None)
    for writer in writers.values():
        writer.join()
    seconds = time.perf_counter() - began
    for writer in writers.values():
        if writer.error is not None:
            raise writer.error
    results = [w.result for w in writers.values()]
    written = sum(r.written for r in results)
    failed = [f for r in results for f in r.failed]
    summary = {
        "products": args.products,
        "start": start,
        "identifiers": total,
        "written": written,
        "failed": len(failed),
        "seconds": round(seconds, 3),
        "identifiers_per_second": round(written / seconds) if seconds > 0 else None,
        "generated_seconds": round(generated, 3),
        "nodes": {
            r.name: {
                "written": r.written,
                "failed": len(r.failed),
                "seconds": round(r.seconds, 3),
                "identifiers_per_second": round(r.written / r.seconds) if r.seconds else None,
            }
            for r in results
        },
        "first_product": first_product,
        "last_product": last_product,
        "failures": failed[:20],
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        _print(summary)
    return EXIT_OK if not failed else EXIT_HANDLE_ERROR


def _print(summary: dict[str, Any]) -> None:
    table = Table(
        title=f"idr seed: {summary['products']} products from serial {summary['start']} (demo)",
        title_justify="left",
    )
    for column in ("node", "written", "failed", "seconds", "identifiers/s"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for name, row in summary["nodes"].items():
        table.add_row(
            name,
            str(row["written"]),
            str(row["failed"]),
            f"{row['seconds']:.2f}",
            str(row["identifiers_per_second"] or "-"),
        )
    out.print(table)
    out.print(
        f"{summary['written']} of {summary['identifiers']} identifiers written in "
        f"{summary['seconds']:.2f} s ({summary['identifiers_per_second'] or '-'} identifiers/s; "
        f"generated in {summary['generated_seconds']:.2f} s)"
    )
    if summary["first_product"]:
        out.print(f"try:  idr resolve {summary['first_product']}")
    for failure in summary["failures"]:
        err.print(f"[red]{failure['handle']}: {failure['responseCode']} {failure['message']}[/red]")


def register(sub: Any) -> None:
    """Add `seed` to the parser."""
    p = sub.add_parser(
        "seed",
        help="write N more demo products (lots, steps, reports) through the batch API",
    )
    p.add_argument("--products", type=int, required=True, help="how many products to add")
    p.add_argument("--seed", type=int, default=2024, help="demo seed number (2024)")
    p.add_argument(
        "--start",
        type=int,
        help="first serial number (default: the count of records under 88.168.1, so "
        "repeated runs do not collide)",
    )
    p.add_argument("--top", help="top-level node URL for the records' consumer-page URLs")
    p.add_argument(
        "--chunk", type=int, default=MAX_BATCH, help=f"items per batch request (<= {MAX_BATCH})"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    # Also accepted after the subcommand; SUPPRESS keeps `idr --data-dir X seed` working.
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help="where hierarchy.json is")
    p.set_defaults(func=run)
