"""`idr promote NODE`: make a backup top-level node the writable primary (failover)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import requests

from clients.console import (
    EXIT_HANDLE_ERROR,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    data_dir,
    err,
    out,
)
from clients.emulator import UnknownNode, node_url


def run(args: argparse.Namespace) -> int:
    """POST /_emulator/promote to the node and print where replication stands."""
    try:
        url = node_url(args.node, data_dir(args))
    except UnknownNode as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    try:
        resp = requests.post(f"{url}/_emulator/promote", timeout=args.timeout)
        body: dict[str, Any] = resp.json()
    except requests.RequestException as exc:
        err.print(f"[red]error:[/red] {args.node} at {url} is unreachable ({type(exc).__name__})")
        return EXIT_UNREACHABLE
    except ValueError:
        err.print(f"[red]error:[/red] {url} answered HTTP {resp.status_code} without JSON")
        return EXIT_HANDLE_ERROR
    if resp.status_code != 200:
        code, message = body.get("responseCode"), body.get("message", "")
        err.print(f"[red]error {code}:[/red] {message or f'HTTP {resp.status_code}'}")
        return EXIT_HANDLE_ERROR
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return EXIT_OK
    status = body.get("status", {})
    out.print(body.get("message", ""))
    out.print(
        f"role {status.get('role')}, epoch {status.get('epoch')}, "
        f"{status.get('last_seq')} changes held"
    )
    if body.get("promoted") and body.get("previous_upstream_reachable") is False:
        out.print(
            "note: the old primary was not answering; writes it acknowledged after the "
            "last change copied here are not on this node (replication is asynchronous "
            "once the backup is disconnected)"
        )
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `promote` to the parser."""
    p = sub.add_parser(
        "promote", help="make a backup top-level node (cd-backup) the writable primary"
    )
    p.add_argument("node", help="node name (cd-backup) or base URL")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the node (5)")
    p.add_argument("--json", action="store_true", help="print the node's answer as JSON")
    p.set_defaults(func=run)
