"""`idr status`: describe the running hierarchy and check each node's readiness."""

from __future__ import annotations

import argparse
import json
from typing import Any

import requests
from rich.table import Table

from clients.console import EXIT_OK, EXIT_UNREACHABLE, data_dir, out
from clients.launcher import read_hierarchy


def run(args: argparse.Namespace) -> int:
    """Print hierarchy.json with a ready flag per node; non-zero if any node is not ready."""
    info = read_hierarchy(data_dir(args))
    healthy = True
    for node in info["nodes"]:
        try:
            resp = requests.get(f"{node['url']}/_emulator/ready", timeout=1)
            node["ready"] = resp.status_code == 200
        except requests.RequestException:
            node["ready"] = False
        healthy = healthy and node["ready"]
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        table = Table(title="hierarchy status", title_justify="left")
        for column in ("node", "role", "prefix", "url", "ready"):
            table.add_column(column)
        for node in info["nodes"]:
            mark = "[green]yes[/green]" if node["ready"] else "[red]no[/red]"
            table.add_row(node["name"], node["role"], node["prefix"], node["url"], mark)
        out.print(table)
    return EXIT_OK if healthy else EXIT_UNREACHABLE


def register(sub: Any) -> None:
    """Add `status` to the parser."""
    p = sub.add_parser("status", help="show the running hierarchy")
    p.add_argument("--json", action="store_true", help="print hierarchy.json with ready flags")
    p.set_defaults(func=run)
