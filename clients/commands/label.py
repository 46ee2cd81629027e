"""`idr label ID -o FILE.png|.svg`: a QR label carrying the product's consumer URL."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clients.console import EXIT_OK, EXIT_USAGE, add_top_option, err, out, top_level_urls
from idcore.identifier import from_scan


def run(args: argparse.Namespace) -> int:
    """Write the label; nothing is resolved (labels are often printed before registration)."""
    from clients.labels import consumer_url, write_label  # imaging libraries load on use

    handle = from_scan(args.identifier).text
    url = consumer_url(top_level_urls(args)[0], handle)
    try:
        path = write_label(url, handle, Path(args.output), scale=args.scale)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    out.print(f"wrote {path} ({path.stat().st_size} bytes): {url}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `label` to the parser."""
    p = sub.add_parser("label", help="write a QR label (PNG or SVG) for an identifier")
    p.add_argument("identifier", help="e.g. 88.168.1/WARD-2024-000123")
    p.add_argument("-o", "--output", required=True, help="FILE.png or FILE.svg")
    p.add_argument("--scale", type=int, default=8, help="pixels per QR module (8)")
    add_top_option(p)
    p.set_defaults(func=run)
