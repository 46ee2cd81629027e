"""Subcommands of `idr`: each module defines `register(subparsers)`; cli.py finds them all."""
