"""`idr prepare`: make a hierarchy that runs elsewhere (docker compose) ready to use, once.

The compose file's `seed` service runs it after every node is healthy. It waits until
each node of the topology reports its seed loaded, checks that the sample product
resolves through the top-level node, writes `hierarchy.json` (nodes, credentials,
samples) into the data directory so that `idr status`, `idr trace`, `idr seed` ... work
from other containers, and adds `--products N` more demo products through the batch
API the first time only (a note in the data directory remembers it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import requests

from clients.console import EXIT_HANDLE_ERROR, EXIT_OK, EXIT_UNREACHABLE, data_dir, err, out
from clients.launcher import HIERARCHY_FILE, Hierarchy
from clients.resolver import Resolver
from idcore.topology import Topology, load_topology

DONE_FILE = "prepared.json"


def wait_ready(topology: Topology, timeout: float) -> list[str]:
    """Poll every node's /_emulator/ready until all answer 200; the names still not ready."""
    pending = {n.name: n.url for n in topology.nodes}
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while pending:
            for name, url in list(pending.items()):
                try:
                    if session.get(f"{url}/_emulator/ready", timeout=2).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    return sorted(pending)


def _add_products(folder: Path, products: int, seed: int) -> int:
    from clients.cli import main as idr

    return idr(
        ["--data-dir", str(folder), "seed", "--products", str(products), "--seed", str(seed)]
    )


def run(args: argparse.Namespace) -> int:
    """Wait, check, describe, and add products once."""
    topology = load_topology(args.topology or os.environ.get("IDR_TOPOLOGY"))
    folder = data_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    missing = wait_ready(topology, args.timeout)
    if missing:
        err.print(f"[red]not ready after {args.timeout:g}s:[/red] {', '.join(missing)}")
        return EXIT_UNREACHABLE
    described = Hierarchy(
        topology=topology,
        data_dir=folder,
        store=os.environ.get("IDR_STORE", "sqlite"),
        seed=args.seed_set or os.environ.get("IDR_SEED", "demo"),
        seed_number=args.seed,
    ).describe()
    (folder / HIERARCHY_FILE).write_text(
        json.dumps(described, ensure_ascii=False, indent=2), "utf-8"
    )
    product = described["samples"]["product"]
    if product:
        with Resolver([n.url for n in topology.top_level], timeout=5) as resolver:
            record = resolver.resolve(product, fresh=True)
        out.print(f"demo data loaded: {product} resolves through {record.served_by}")
    done_path = folder / DONE_FILE
    done: dict[str, Any] = json.loads(done_path.read_text("utf-8")) if done_path.exists() else {}
    if args.products > 0 and not done.get("products"):
        code = _add_products(folder, args.products, args.seed)
        if code != EXIT_OK:
            return EXIT_HANDLE_ERROR
        done["products"] = args.products
        done_path.write_text(json.dumps(done), "utf-8")
    elif done.get("products"):
        out.print(f"{done['products']} extra products were added before: not again")
    out.print(f"described the hierarchy in {folder / HIERARCHY_FILE}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `prepare` to the parser."""
    p = sub.add_parser(
        "prepare",
        help="wait for a hierarchy started elsewhere, describe it, add demo products once",
        description="For docker compose's seed service: wait until every node of the topology "
        "is ready, check the sample product resolves, write hierarchy.json into the data "
        "directory, and the first time only add --products N demo products.",
    )
    p.add_argument("--topology", help="topology file (default: IDR_TOPOLOGY, else the packaged)")
    p.add_argument("--products", type=int, default=0, help="demo products to add once (0)")
    p.add_argument("--seed", type=int, default=2024, help="demo seed number (2024)")
    p.add_argument(
        "--seed-set",
        choices=("demo", "none"),
        help="what the nodes seeded (default: IDR_SEED, else demo)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help="where hierarchy.json goes")
    p.set_defaults(func=run)
