"""`idr up`: start the whole hierarchy and keep it running until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

from rich.table import Table

from clients.console import EXIT_HANDLE_ERROR, EXIT_OK, data_dir, err, out
from clients.launcher import Hierarchy, LaunchError
from idcore.topology import load_topology


def run(args: argparse.Namespace) -> int:
    """Start every node, print the table, wait for a signal, stop every node."""
    hierarchy = Hierarchy(
        topology=load_topology(args.topology),
        data_dir=data_dir(args),
        store=args.store,
        redis_url=args.redis_url or os.environ.get("IDR_REDIS_URL"),
        seed="none" if args.no_seed else "demo",
        seed_number=args.seed,
    )
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    began = time.monotonic()
    try:
        hierarchy.start(timeout=args.timeout)
    except LaunchError as exc:
        err.print(f"[red]idr up failed:[/red] {exc}")
        return EXIT_HANDLE_ERROR
    print_nodes(hierarchy.describe(), f"ready in {time.monotonic() - began:.1f}s")
    try:
        while not stopping:
            for name, node in hierarchy.nodes.items():
                if node.process.poll() is not None:
                    err.print(
                        f"[red]node {name} exited ({node.process.returncode}); "
                        f"see {node.log_path}[/red]"
                    )
                    stopping = True
            time.sleep(0.2)
    finally:
        hierarchy.stop()
        out.print("stopped every node")
    return EXIT_OK


def print_nodes(info: dict[str, Any], note: str) -> None:
    """The table of nodes and a command to try."""
    table = Table(
        title=f"Chongqing identifier hierarchy (demo data) - {note}", title_justify="left"
    )
    for column in ("node", "role", "prefix", "url"):
        table.add_column(column)
    for node in info["nodes"]:
        table.add_row(node["name"], node["role"], node["prefix"], node["url"])
    out.print(table)
    sample = (info.get("samples") or {}).get("product")
    if sample:
        out.print(f"try:  idr resolve {sample}")
        top = next((n["url"] for n in info["nodes"] if n["role"] == "primary"), None)
        if top:
            out.print(f"      curl -i {top}/api/handles/{sample}")
        out.print(f"      idr trust fetch && idr resolve {sample} --verify")
    out.print(f"description: {info['data_dir']}/hierarchy.json   stop: Ctrl-C")


def register(sub: Any) -> None:
    """Add `up` to the parser."""
    p = sub.add_parser("up", help="start the whole hierarchy with demo data")
    p.add_argument("--topology", help="topology file (default: the packaged one)")
    p.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    p.add_argument("--redis-url", help="Redis URL for --store redis (or IDR_REDIS_URL)")
    p.add_argument("--seed", type=int, default=2024, help="demo seed number (2024)")
    p.add_argument("--no-seed", action="store_true", help="start without demo data")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for readiness")
    p.set_defaults(func=run)
