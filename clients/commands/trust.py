"""`idr trust fetch` pins the top-level node's public key; `idr trust show` prints it.

The pin lives in $IDR_TRUST_ANCHOR, else `<data dir>/anchor.json` when a data directory
is named (`--data-dir` or IDR_DATA_DIR), else ~/.config/idr/anchor.json. The first fetch
trusts what it gets (and says so); later fetches accept a new key only when a pinned key
signed it (a rotation) and refuse loudly otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rich.markup import escape

from clients.console import (
    EXIT_HANDLE_ERROR,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_UNTRUSTED,
    add_top_option,
    err,
    out,
    top_level_urls,
)
from clients.trust import (
    Anchor,
    AnchorChanged,
    AnchorError,
    anchor_from_record,
    default_anchor_path,
    fetch_anchor_record,
    fingerprint_of,
)


def anchor_path(args: argparse.Namespace) -> Path:
    """Where this command keeps the pinned anchor (see the module docstring)."""
    named = getattr(args, "data_dir", None) or os.environ.get("IDR_DATA_DIR")
    return default_anchor_path(Path(named) if named else None)


def pinned_anchor(args: argparse.Namespace) -> Anchor | None:
    """The pinned anchor, or None (with the reason on stderr) if there is none to use."""
    path = anchor_path(args)
    try:
        return Anchor.load(path)
    except FileNotFoundError:
        err.print(
            f"[yellow]no trust anchor pinned[/yellow] at {escape(str(path))}: run "
            "`idr trust fetch` first"
        )
    except AnchorError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
    return None


def _warn_changed(path: Path, exc: AnchorChanged) -> None:
    bar = "!" * 78
    err.print(f"[bold red]{bar}[/bold red]")
    err.print("[bold red]WARNING: THE TOP-LEVEL TRUST ANCHOR HAS CHANGED. REFUSED.[/bold red]")
    err.print(f"[bold red]{bar}[/bold red]")
    err.print(escape(str(exc)))
    err.print(
        "Someone may be impersonating the top-level node, or the hierarchy was recreated "
        f"(its data directory deleted). The pin at {escape(str(path))} is unchanged. If you "
        "know why the key changed, accept it with `idr trust fetch --replace`."
    )


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch the anchor record from a top-level node, check it against the pin, save it."""
    path = anchor_path(args)
    pinned: Anchor | None = None
    if not args.replace:
        try:
            pinned = Anchor.load(path)
        except FileNotFoundError:
            pinned = None
        except AnchorError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))} (use --replace to start over)")
            return EXIT_HANDLE_ERROR
    try:
        prefix, values, url = fetch_anchor_record(top_level_urls(args), args.timeout)
    except AnchorError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_UNREACHABLE
    try:
        anchor = anchor_from_record(prefix, values, pinned, url)
    except AnchorChanged as exc:
        _warn_changed(path, exc)
        return EXIT_UNTRUSTED
    except AnchorError as exc:
        err.print(f"[red]refused:[/red] {escape(str(exc))}")
        return EXIT_UNTRUSTED
    anchor.save(path)
    shown = f"{anchor.current_kid} {fingerprint_of(anchor)}"
    if pinned is None:
        how = "replaced" if args.replace else "first use: trusted as presented"
        out.print(f"pinned the trust anchor of {prefix} from {url} ({how}): {shown}")
    elif pinned.current_kid != anchor.current_kid:
        out.print(
            f"the top-level key of {prefix} rolled over to {shown}, signed by the pinned key "
            f"{pinned.current_kid}: pin updated"
        )
    else:
        out.print(f"the trust anchor of {prefix} is unchanged: {shown}")
    out.print(f"saved in {path}")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    """Print the pinned anchor: prefix, key ids and fingerprints."""
    path = anchor_path(args)
    try:
        anchor = Anchor.load(path)
    except FileNotFoundError:
        err.print(f"[red]error:[/red] no trust anchor pinned at {path}: run `idr trust fetch`")
        return EXIT_HANDLE_ERROR
    except AnchorError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_HANDLE_ERROR
    if args.json:
        print(json.dumps({**anchor.to_json(), "path": str(path)}, indent=2))
        return EXIT_OK
    out.print(f"trust anchor of prefix {anchor.prefix} ({path})")
    out.print(f"fetched from {anchor.source or '-'} at {anchor.fetched_at or '-'}")
    for kid, print_, status in anchor.fingerprints():
        out.print(f"  {kid}  {print_}  {status}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `trust fetch` and `trust show` to the parser."""
    p = sub.add_parser("trust", help="pin and show the top-level trust anchor")
    actions = p.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser(
        "fetch",
        help="pin the top-level node's public key (first use), or check it is unchanged",
        description="Fetch the trust anchor (the top-level prefix record with its HS_PUBKEY "
        "values) and pin it. A key that no pinned key signed is refused (exit 5).",
    )
    fetch.add_argument(
        "--replace", action="store_true", help="forget the pinned key and trust the one presented"
    )
    add_top_option(fetch)
    fetch.set_defaults(func=run_fetch)
    show = actions.add_parser("show", help="print the pinned anchor's key ids and fingerprints")
    show.add_argument("--json", action="store_true", help="print the anchor file as JSON")
    show.set_defaults(func=run_show)
