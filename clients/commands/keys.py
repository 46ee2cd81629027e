"""`idr keys rotate NODE`: give a node a new signing key, keeping the old one as retired.

The node rotates (POST /_emulator/keys/rotate). For a secondary node, the top-level admin
then registers the new key set in the node's delegation `0.NA/<prefix>` on the primary
top-level node (credentials from data/hierarchy.json), which signs it; records signed by
the old key stay verifiable because the retired key stays delegated. A top-level node
republishes its own prefix record, counter-signed by the retired key, so pinned clients
accept the new key with `idr trust fetch`.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

import requests

from clients.answer import json_answer
from clients.commands.admin import new_session, node_entry
from clients.console import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, data_dir, err, out
from clients.launcher import read_hierarchy
from idcore.credentials import basic_header
from idcore.signing import with_pubkeys


def register_keys(
    top: dict[str, Any], prefix: str, jwks: list[dict[str, Any]], timeout: float
) -> list[int]:
    """As the top-level admin, put `jwks` into `0.NA/<prefix>`; the HS_PUBKEY indexes."""
    handle = f"0.NA/{prefix}"
    url = f"{top['url'].rstrip('/')}/api/handles/{quote(handle, safe='/')}"
    auth = {"Authorization": basic_header(top["admin"], top["secret"])}
    with new_session() as session:
        current = json_answer(session.get(url, params={"auth": "true"}, timeout=timeout), handle)
        values = with_pubkeys(current["values"], jwks)
        json_answer(
            session.put(url, json={"values": values}, headers=auth, timeout=timeout), handle
        )
    return [int(v["index"]) for v in values if v["type"] == "HS_PUBKEY"]


def run_rotate(args: argparse.Namespace) -> int:
    """Rotate one node's key and, for a secondary node, register it at the top."""
    try:
        node = node_entry(args.node, args)
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc.args[0]}")
        return EXIT_USAGE
    if node.get("role") == "backup":
        err.print(
            f"[red]error:[/red] {args.node} is a backup: it holds the primary's key; rotate the "
            "primary top-level node"
        )
        return EXIT_USAGE
    try:
        with new_session() as session:
            resp = session.post(f"{node['url']}/_emulator/keys/rotate", timeout=args.timeout)
        rotated = json_answer(resp, args.node)
        retired = ", ".join(rotated["retired"]) or "none"
        out.print(f"{args.node}: new key {rotated['kid']} (retired, still published: {retired})")
        if node.get("role") in ("primary", "backup"):
            out.print(rotated["message"])
            return EXIT_OK
        tops = [n for n in read_hierarchy(data_dir(args))["nodes"] if n["role"] == "primary"]
        if not tops:
            err.print("[red]error:[/red] no primary top-level node runs to register the key at")
            return EXIT_UNREACHABLE
        indexes = register_keys(tops[0], node["prefix"], rotated["keys"], args.timeout)
    except requests.RequestException as exc:
        err.print(f"[red]error:[/red] a node is unreachable ({type(exc).__name__}): {exc}")
        return EXIT_UNREACHABLE
    out.print(
        f"0.NA/{node['prefix']} on {tops[0]['name']} now delegates "
        f"{', '.join(k['kid'] for k in rotated['keys'])} (HS_PUBKEY at {indexes})"
    )
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `keys rotate` to the parser."""
    p = sub.add_parser("keys", help="signing keys of the nodes")
    actions = p.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser(
        "rotate",
        help="give a node a new signing key (the old one stays published, retired)",
        description="Rotate a node's Ed25519 signing key. Records signed by the old key stay "
        "verifiable; new writes are signed by the new one.",
    )
    rotate.add_argument("node", help="node name, e.g. timber or cq-top")
    rotate.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    rotate.set_defaults(func=run_rotate)
