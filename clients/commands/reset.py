"""`idr reset [NODE ...]`: restore the seeded state of the running nodes (all by default)."""

from __future__ import annotations

import argparse
from typing import Any

from clients.console import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, data_dir, err, out
from clients.emulator import EmulatorClient, UnknownNode, all_node_urls, node_url
from idcore.errors import HandleError, TransportError


def run(args: argparse.Namespace) -> int:
    """Reset each node: seeded data back, caches, journal and (unless kept) faults cleared."""
    try:
        if args.nodes:
            targets = {name: node_url(name, data_dir(args)) for name in args.nodes}
        else:
            targets = all_node_urls(data_dir(args))
    except UnknownNode as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    failed = 0
    for name, url in targets.items():
        with EmulatorClient(url) as node:
            try:
                answer = node.reset(keep_faults=args.keep_faults)
            except (TransportError, HandleError) as exc:
                err.print(f"[red]{name}: reset failed:[/red] {exc.message}")
                failed += 1
                continue
        kept = f", {answer['faults']} faults kept" if args.keep_faults else ""
        out.print(f"{name}: reset to its seed ({answer['records']} records{kept})")
    return EXIT_UNREACHABLE if failed else EXIT_OK


def register(sub: Any) -> None:
    """Add `reset` to the parser."""
    p = sub.add_parser(
        "reset",
        help="restore the seeded state of nodes (all by default)",
        description="Empty each node's store and seed it again; clear its caches, its "
        "request journal and its faults.",
    )
    p.add_argument("nodes", nargs="*", help="node names or URLs (default: every running node)")
    p.add_argument("--keep-faults", action="store_true", help="keep the injected faults")
    p.set_defaults(func=run)
