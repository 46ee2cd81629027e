"""`idr journal NODE`: the requests a node saw recently, with status, responseCode and time."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from clients.console import EXIT_OK, EXIT_USAGE, data_dir, err, out
from clients.emulator import EmulatorClient, UnknownNode, node_url


def run(args: argparse.Namespace) -> int:
    """Print (or clear) a node's request journal."""
    try:
        url = node_url(args.node, data_dir(args))
    except UnknownNode as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    with EmulatorClient(url) as node:
        if args.clear:
            node.clear_journal()
            out.print(f"{args.node}: journal cleared")
            return EXIT_OK
        entries = node.journal(args.limit, args.since)
    if args.json:
        print(json.dumps(entries, ensure_ascii=False, indent=2))
        return EXIT_OK
    table = Table(title=f"recent requests at {args.node}", title_justify="left")
    for column in ("seq", "time", "method", "path", "status", "code", "ms", "fault"):
        table.add_column(column)
    for e in entries:
        path = e["path"] + (f"?{e['query']}" if e["query"] else "")
        table.add_row(
            str(e["seq"]),
            e["time"][11:23],
            e["method"],
            path,
            "dropped" if e["status"] is None else str(e["status"]),
            "" if e["responseCode"] is None else str(e["responseCode"]),
            f"{e['durationMs']:.1f}",
            e["fault"] or "",
        )
    out.print(table)
    if not entries:
        out.print("(no requests yet)")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `journal` to the parser."""
    p = sub.add_parser("journal", help="list the requests a node saw recently")
    p.add_argument("node", help="node name (furniture, cq-top, ...) or base URL")
    p.add_argument("--limit", type=int, default=20, help="the last N requests (20; 0 = all)")
    p.add_argument("--since", type=int, default=0, help="only entries after this seq")
    p.add_argument("--clear", action="store_true", help="forget the recorded requests")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
