"""`idr resolve ID`: resolve one identifier through the top-level node."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from clients.console import EXIT_OK, add_top_option, out, top_level_urls
from clients.resolver import Mode, Resolver


def _render_data(value: dict[str, Any]) -> str:
    data = value["data"]
    if data["format"] in ("string", "hex", "base64"):
        return str(data["value"])
    return json.dumps(data["value"], ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    """Resolve one identifier and print it as a table or Handle JSON."""
    mode: Mode = "iterative" if args.iterative else "recursive"
    with Resolver(top_level_urls(args), mode=mode, timeout=args.timeout) as resolver:
        record = resolver.resolve(
            args.identifier, types=args.type or (), indexes=args.index or (), fresh=args.fresh
        )
    if args.json:
        print(json.dumps(record.to_json(), ensure_ascii=False, indent=2))
        return EXIT_OK
    table = Table(title=f"{record.handle}  (served by {record.served_by})", title_justify="left")
    table.add_column("index", justify="right")
    table.add_column("type")
    table.add_column("data", overflow="fold")
    table.add_column("ttl", justify="right")
    for value in record.values:
        table.add_row(str(value["index"]), value["type"], _render_data(value), str(value["ttl"]))
    out.print(table)
    if not record.values:
        out.print("(the record has no value matching the filters)")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `resolve` to the parser."""
    p = sub.add_parser("resolve", help="resolve an identifier through the top-level node")
    p.add_argument("identifier", help="e.g. 88.168.1/WARD-2024-000123, hdl:..., or a scanned URL")
    p.add_argument("--type", action="append", help="only values of this type (repeatable)")
    p.add_argument("--index", action="append", type=int, help="only this index (repeatable)")
    p.add_argument("--json", action="store_true", help="print the Handle JSON")
    p.add_argument("--iterative", action="store_true", help="follow referrals yourself")
    p.add_argument("--fresh", action="store_true", help="bypass caches (auth=true)")
    add_top_option(p)
    p.set_defaults(func=run)
