"""`idr admin enterprise add`: register an enterprise prefix on a secondary node as its admin.

The node's admin credentials come from the running hierarchy (data/hierarchy.json,
written by `idr up`); the node creates `0.NA/<prefix>` and `<prefix>/ADMIN` together
(POST /api/enterprises), so the enterprise exists whole or not at all.
"""

from __future__ import annotations

import argparse
from typing import Any

import requests

from clients.answer import json_answer
from clients.console import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, data_dir, err, out
from clients.launcher import read_hierarchy
from idcore.credentials import basic_header


def node_entry(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The hierarchy.json entry of a running node; LookupError naming the choices."""
    info = read_hierarchy(data_dir(args))
    for entry in info["nodes"]:
        if entry["name"] == name:
            return dict(entry)
    names = ", ".join(n["name"] for n in info["nodes"])
    raise LookupError(f"no node named {name!r} runs: choose one of {names}")


def new_session() -> requests.Session:
    """The HTTP session a command uses (tests mount in-process nodes on it)."""
    return requests.Session()


def add_enterprise(
    base_url: str, admin: str, secret: str, body: dict[str, Any], timeout: float = 10.0
) -> dict[str, Any]:
    """POST /api/enterprises; the answer, or the Handle error the node gave."""
    with new_session() as session:
        resp = session.post(
            f"{base_url.rstrip('/')}/api/enterprises",
            json=body,
            headers={"Authorization": basic_header(admin, secret)},
            timeout=timeout,
        )
    return json_answer(resp, base_url)


def run_enterprise_add(args: argparse.Namespace) -> int:
    """Register the enterprise with the node admin's credentials."""
    try:
        node = node_entry(args.node, args)
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc.args[0]}")
        return EXIT_USAGE
    if node.get("role") in ("primary", "backup"):
        err.print(f"[red]error:[/red] {args.node} is a top-level node: name a secondary node")
        return EXIT_USAGE
    body: dict[str, Any] = {"prefix": args.prefix, "name": args.name, "secret": args.secret}
    if args.name_en:
        body["nameEn"] = args.name_en
    try:
        answer = add_enterprise(node["url"], node["admin"], node["secret"], body, args.timeout)
    except requests.RequestException as exc:
        err.print(f"[red]error:[/red] {node['url']} is unreachable ({type(exc).__name__})")
        return EXIT_UNREACHABLE
    out.print(
        f"enterprise {answer['prefix']} registered on {args.node}: "
        f"{', '.join(answer['handles'])}; it writes as {answer['admin']}"
    )
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `admin` to the parser."""
    p = sub.add_parser(
        "admin",
        help="administer the hierarchy (register enterprises on a secondary node)",
        description="Administrative writes made with a node admin's credentials from the "
        "running hierarchy (data/hierarchy.json).",
    )
    kinds = p.add_subparsers(dest="admin_kind", required=True)
    ent = kinds.add_parser("enterprise", help="enterprise prefixes on a secondary node")
    actions = ent.add_subparsers(dest="admin_action", required=True)
    add = actions.add_parser(
        "add",
        help="register an enterprise prefix with its admin handle and secret",
        description="Create 0.NA/PREFIX (HS_ADMIN for PREFIX/ADMIN and the node admin) and "
        "PREFIX/ADMIN (HS_ADMIN and the secret as HS_SECKEY), both or neither.",
    )
    add.add_argument("--node", required=True, help="secondary node name (furniture, ...)")
    add.add_argument(
        "--prefix", required=True, help="enterprise prefix below the node's, e.g. 88.168.3"
    )
    add.add_argument("--name", required=True, help="enterprise name")
    add.add_argument("--name-en", help="English name")
    add.add_argument(
        "--secret", required=True, help="the enterprise admin's secret (8+ characters)"
    )
    add.add_argument("--timeout", type=float, default=10.0, help="seconds for the request (10)")
    add.set_defaults(func=run_enterprise_add)
