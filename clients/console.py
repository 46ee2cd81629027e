"""Shared pieces of the `idr` subcommands: consoles, exit codes, where the hierarchy runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from clients.launcher import read_hierarchy
from clients.resolver import DEFAULT_TOP_LEVEL

EXIT_OK, EXIT_HANDLE_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_UNTRUSTED = 5
"""A record that is not trusted (`idr resolve --verify`), or a refused trust anchor."""

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def data_dir(args: argparse.Namespace) -> Path:
    """--data-dir, else IDR_DATA_DIR, else ./data."""
    return Path(getattr(args, "data_dir", None) or os.environ.get("IDR_DATA_DIR", "data"))


def top_level_urls(args: argparse.Namespace) -> list[str]:
    """--top flags, else IDR_TOP, else the running hierarchy's top-level nodes, else defaults."""
    if getattr(args, "top", None):
        return list(args.top)
    env = os.environ.get("IDR_TOP")
    if env:
        return [u.strip() for u in env.split(",") if u.strip()]
    try:
        info = read_hierarchy(data_dir(args))
    except (FileNotFoundError, ValueError):
        return list(DEFAULT_TOP_LEVEL)
    tops = [n for n in info["nodes"] if n["role"] in ("primary", "backup")]
    tops.sort(key=lambda n: n["role"] != "primary")
    return [n["url"] for n in tops] or list(DEFAULT_TOP_LEVEL)


def add_top_option(parser: argparse.ArgumentParser) -> None:
    """The --top and --timeout options every resolving command shares."""
    parser.add_argument("--top", action="append", help="top-level node URL (repeatable, in order)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per request (3)")
