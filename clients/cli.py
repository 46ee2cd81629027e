"""The `idr` command: every module in clients/commands adds one subcommand."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from clients import commands
from clients.console import EXIT_HANDLE_ERROR, EXIT_UNREACHABLE, err
from idcore.errors import HandleError, TransportError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `idr`, with every subcommand found in clients/commands."""
    parser = argparse.ArgumentParser(
        prog="idr", description="Chongqing identifier-resolution emulator (demo data)."
    )
    parser.add_argument("--data-dir", help="where nodes keep data and hierarchy.json (./data)")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `idr`: exit 0 ok, 1 Handle error, 2 usage, 3 partial, 4 unreachable."""
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
