"""The `idr` command: resolve identifiers and run the emulated hierarchy."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clients.launcher import Hierarchy, LaunchError, read_hierarchy
from clients.resolver import DEFAULT_TOP_LEVEL, Resolver
from idcore.errors import HandleError, TransportError
from idcore.topology import load_topology

EXIT_OK, EXIT_HANDLE_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 4

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("IDR_DATA_DIR", "data"))


def top_level_urls(args: argparse.Namespace) -> list[str]:
    """--top flags, else IDR_TOP, else the running hierarchy's top-level nodes, else defaults."""
    if getattr(args, "top", None):
        return list(args.top)
    env = os.environ.get("IDR_TOP")
    if env:
        return [u.strip() for u in env.split(",") if u.strip()]
    try:
        info = read_hierarchy(_data_dir(args))
    except (FileNotFoundError, ValueError):
        return list(DEFAULT_TOP_LEVEL)
    tops = [n for n in info["nodes"] if n["role"] in ("primary", "backup")]
    tops.sort(key=lambda n: n["role"] != "primary")
    return [n["url"] for n in tops] or list(DEFAULT_TOP_LEVEL)


def _render_data(value: dict[str, Any]) -> str:
    data = value["data"]
    if data["format"] in ("string", "hex", "base64"):
        return str(data["value"])
    return json.dumps(data["value"], ensure_ascii=False)


def cmd_resolve(args: argparse.Namespace) -> int:
    """Resolve one identifier and print it."""
    mode = "iterative" if args.iterative else "recursive"
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


def cmd_up(args: argparse.Namespace) -> int:
    """Start the hierarchy and keep it running until Ctrl-C or SIGTERM."""
    topology = load_topology(args.topology)
    hierarchy = Hierarchy(
        topology=topology,
        data_dir=_data_dir(args),
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
    _print_nodes(hierarchy.describe(), f"ready in {time.monotonic() - began:.1f}s")
    try:
        while not stopping:
            for name, node in hierarchy.nodes.items():
                if node.process.poll() is not None:
                    err.print(f"[red]node {name} exited ({node.process.returncode}); "
                              f"see {node.log_path}[/red]")
                    stopping = True
            time.sleep(0.2)
    finally:
        hierarchy.stop()
        out.print("stopped every node")
    return EXIT_OK


def _print_nodes(info: dict[str, Any], note: str) -> None:
    table = Table(title=f"Chongqing identifier hierarchy (demo data) - {note}",
                  title_justify="left")
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
    out.print(f"description: {info['data_dir']}/hierarchy.json   stop: Ctrl-C")


def cmd_status(args: argparse.Namespace) -> int:
    """Describe the running hierarchy and check each node's health."""
    import requests

    info = read_hierarchy(_data_dir(args))
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `idr`."""
    parser = argparse.ArgumentParser(
        prog="idr", description="Chongqing identifier-resolution emulator (demo data)."
    )
    parser.add_argument("--data-dir", help="where nodes keep data and hierarchy.json (data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("resolve", help="resolve an identifier through the top-level node")
    p.add_argument("identifier", help="e.g. 88.168.1/WARD-2024-000123, hdl:..., or a scanned URL")
    p.add_argument("--type", action="append", help="only values of this type (repeatable)")
    p.add_argument("--index", action="append", type=int, help="only this index (repeatable)")
    p.add_argument("--json", action="store_true", help="print the Handle JSON")
    p.add_argument("--top", action="append", help="top-level node URL (repeatable, in order)")
    p.add_argument("--iterative", action="store_true", help="follow referrals yourself")
    p.add_argument("--fresh", action="store_true", help="bypass caches (auth=true)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per request (3)")
    p.set_defaults(func=cmd_resolve)

    p = sub.add_parser("up", help="start the whole hierarchy with demo data")
    p.add_argument("--topology", help="topology file (default: the packaged one)")
    p.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    p.add_argument("--redis-url", help="Redis URL for --store redis (or IDR_REDIS_URL)")
    p.add_argument("--seed", type=int, default=2024, help="demo seed number (2024)")
    p.add_argument("--no-seed", action="store_true", help="start without demo data")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for readiness")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("status", help="show the running hierarchy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `idr`."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except TransportError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        return EXIT_UNREACHABLE
    except HandleError as exc:
        err.print(f"[red]error {int(exc.code)}:[/red] {exc.message}")
        return EXIT_HANDLE_ERROR
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_HANDLE_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
