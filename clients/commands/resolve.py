"""`idr resolve ID`: resolve one identifier through the top-level node."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from clients.commands.trust import pinned_anchor
from clients.console import (
    EXIT_OK,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    add_top_option,
    err,
    out,
    top_level_urls,
)
from clients.resolver import Mode, ResolvedRecord, Resolver
from clients.trust import Verifier


def _render_data(value: dict[str, Any]) -> str:
    data = value["data"]
    if data["format"] in ("string", "hex", "base64"):
        return str(data["value"])
    return json.dumps(data["value"], ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    """Resolve one identifier and print it as a table or Handle JSON."""
    mode: Mode = "iterative" if args.iterative else "recursive"
    with Resolver(top_level_urls(args), mode=mode, timeout=args.timeout) as resolver:
        if args.verify:
            anchor = pinned_anchor(args)
            if anchor is None:
                return EXIT_USAGE
            resolver.verifier = Verifier.for_resolver(resolver, anchor)
        record = resolver.resolve(
            args.identifier, types=args.type or (), indexes=args.index or (), fresh=args.fresh
        )
    if args.json:
        body = record.to_json()
        if record.trust is not None:
            body["trust"] = record.trust.to_json()
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return _trust_exit(record)
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
    if record.trust is not None:
        if record.trust.trusted:
            out.print(f"[green]✓ {escape(str(record.trust))}[/green]")
        else:
            err.print(f"[bold red]✗ {escape(str(record.trust))}[/bold red]")
    return _trust_exit(record)


def _trust_exit(record: ResolvedRecord) -> int:
    """5 for a checked record that is not trusted, else 0."""
    return EXIT_UNTRUSTED if record.trust is not None and not record.trust.trusted else EXIT_OK


def register(sub: Any) -> None:
    """Add `resolve` to the parser."""
    p = sub.add_parser("resolve", help="resolve an identifier through the top-level node")
    p.add_argument("identifier", help="e.g. 88.168.1/WARD-2024-000123, hdl:..., or a scanned URL")
    p.add_argument("--type", action="append", help="only values of this type (repeatable)")
    p.add_argument("--index", action="append", type=int, help="only this index (repeatable)")
    p.add_argument("--json", action="store_true", help="print the Handle JSON")
    p.add_argument("--iterative", action="store_true", help="follow referrals yourself")
    p.add_argument("--fresh", action="store_true", help="bypass caches (auth=true)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="check the signature chain from the pinned anchor (exit 5 unless trusted)",
    )
    add_top_option(p)
    p.set_defaults(func=run)
