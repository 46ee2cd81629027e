"""`idr scan FILE...` and `idr scan --stdin`: decode QR labels or scanner input, then look up."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from clients.commands.trace import (
    add_trace_options,
    exit_code,
    render_tree,
    run_trace_for,
    summary_line,
)
from clients.console import EXIT_HANDLE_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, err, out
from idcore.errors import InvalidHandle

# Worst outcome first: it decides the exit code of a run over many codes.
_SEVERITY = (EXIT_UNREACHABLE, EXIT_HANDLE_ERROR, EXIT_PARTIAL, EXIT_OK)


def _worst(codes: list[int]) -> int:
    return next((c for c in _SEVERITY if c in codes), EXIT_OK)


def look_up(args: argparse.Namespace, code: str, full: bool) -> int:
    """Resolve (trace depth 0) or trace one scanned code and print its summary line."""
    try:
        result = run_trace_for(args, code, max_depth=None if full else 0)
    except InvalidHandle as exc:
        print(f"{code.strip()} | error invalid: {exc.message}", flush=True)
        return EXIT_HANDLE_ERROR
    line = summary_line(result, args.lang)
    if not full:
        # Depth 0 leaves the edges unfetched on purpose: that is not a partial trace.
        line = line.split(" | trace:", 1)[0]
        result.errors = [e for e in result.errors if e.reason != "depth_limit"]
    print(line, flush=True)
    if full and args.tree and result.root_record is not None:
        out.print(render_tree(result, args.lang))
    return exit_code(result)


def run(args: argparse.Namespace) -> int:
    """Decode every file (or read stdin) and look each code up."""
    results: list[int] = []
    if args.stdin:
        # A keyboard-wedge scanner types each code followed by Enter.
        for line in sys.stdin:
            if line.strip():
                results.append(look_up(args, line, full=True))
        return _worst(results)
    if not args.files:
        err.print("[red]error:[/red] name image files to scan, or use --stdin")
        return EXIT_HANDLE_ERROR
    from clients.labels import read_codes  # imaging libraries load on use

    for name in args.files:
        try:
            codes = read_codes(Path(name))
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/red] {name}: {exc}")
            results.append(EXIT_HANDLE_ERROR)
            continue
        if not codes:
            err.print(f"[red]error:[/red] {name}: no QR code found in the image")
            results.append(EXIT_HANDLE_ERROR)
        for code in codes:
            results.append(look_up(args, code, full=args.trace))
    return _worst(results)


def register(sub: Any) -> None:
    """Add `scan` to the parser."""
    p = sub.add_parser(
        "scan",
        help="decode QR images (or scanner input with --stdin) and resolve or trace each",
        description="One line per code: identifier | product | enterprise | trust | trace "
        "size. Exit 0 if all are fine, 3 if a trace is partial, 1 for an unknown or invalid "
        "code, 4 if a node is unreachable.",
    )
    p.add_argument("files", nargs="*", help="PNG or JPEG images holding QR codes")
    p.add_argument("--stdin", action="store_true", help="read codes typed by a scanner, one a line")
    p.add_argument("--trace", action="store_true", help="trace each code instead of resolving it")
    p.add_argument("--tree", action="store_true", help="with --trace: print each trace's tree")
    add_trace_options(p)
    p.set_defaults(func=run)
