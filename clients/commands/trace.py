"""`idr trace ID`: a product's records from raw material to inspection, across nodes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from clients.commands.trust import anchor_path
from clients.console import (
    EXIT_HANDLE_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    add_top_option,
    data_dir,
    err,
    out,
    top_level_urls,
)
from clients.launcher import read_hierarchy
from clients.trace_result import NodeInfo, Trace, TraceRecord
from clients.tracer import DEFAULT_DEADLINE, DEFAULT_MAX_DEPTH, DEFAULT_MAX_RECORDS, trace
from clients.trust import Anchor, AnchorError, Verifier, verifier_for
from idcore.stages import STAGE_TITLES

MARKS = {
    "trusted": "[green]✓[/green]",
    "untrusted": "[bold red]✗[/bold red]",
    "unknown": "[yellow]?[/yellow]",
}


def known_nodes(args: argparse.Namespace) -> list[NodeInfo]:
    """Names of the running hierarchy's nodes (hierarchy.json), to label URLs."""
    try:
        info = read_hierarchy(data_dir(args))
    except (FileNotFoundError, ValueError):
        return []
    return [
        NodeInfo(n["url"], n.get("name"), n.get("title"), n.get("prefix"))
        for n in info.get("nodes", [])
    ]


def trace_verifier(args: argparse.Namespace) -> Verifier | None:
    """The command's verifier (one per run): the pinned anchor, or none pinned (unknown)."""
    if getattr(args, "no_verify", False):
        return None
    verifier: Verifier | None = getattr(args, "_verifier", None)
    if verifier is None:
        path = anchor_path(args)
        try:
            anchor: Anchor | None = Anchor.load(path)
        except (FileNotFoundError, AnchorError):
            anchor = None  # every signed record is "unknown: no trust anchor pinned"
        verifier = verifier_for(top_level_urls(args), anchor, args.timeout)
        args._verifier = verifier
    return verifier


def run_trace_for(args: argparse.Namespace, identifier: str, max_depth: int | None = None) -> Trace:
    """Trace one identifier with the command's options, nodes labelled by name."""
    result = trace(
        identifier,
        top=top_level_urls(args),
        timeout=args.timeout,
        deadline=args.deadline,
        max_depth=args.depth if max_depth is None else max_depth,
        max_records=args.max_records,
        verifier=trace_verifier(args),
    )
    result.label_nodes(known_nodes(args))
    return result


def exit_code(result: Trace) -> int:
    """0 for a full trace, 3 for a partial one, 1 if the root is unknown, 4 if unreachable."""
    failure = result.root_error
    if failure is not None:
        if failure.reason in ("unreachable", "timeout", "deadline"):
            return EXIT_UNREACHABLE
        return EXIT_HANDLE_ERROR
    return EXIT_OK if result.complete else EXIT_PARTIAL


def node_label(result: Trace, url: str) -> str:
    """A node's name (from hierarchy.json or the trace), else its URL."""
    info = result.nodes.get(url)
    return info.label if info else url


def enterprise_label(result: Trace, rec: TraceRecord, lang: str) -> str:
    """`Name (88.169.1)`, or just the prefix when the name is unknown."""
    info = result.enterprise_of(rec)
    prefix = rec.enterprise or "-"
    if info is None or (info.name is None and info.name_en is None):
        return prefix
    return f"{info.label(lang)} ({prefix})"


def summary_line(result: Trace, lang: str = "en") -> str:
    """One line per scanned code: product, enterprise, trust mark, trace size."""
    root = result.root_record
    if root is None:
        failure = result.root_error
        why = f"{failure.reason}: {failure.message}" if failure else "nothing traced"
        return f"{result.root} | error {why}"
    state = "complete" if result.complete else f"partial, {len(result.errors)} missing"
    trust = root.trust.status if root.trust is not None else "unknown"
    return (
        f"{root.handle} | {root.title(lang)} | {enterprise_label(result, root, lang)} | "
        f"trust: {trust} | trace: {len(result.records)} records from "
        f"{len({r.node for r in result.records})} nodes ({state})"
    )


def trust_mark(rec: TraceRecord) -> str:
    """✓ trusted, ✗ untrusted (with the reason), ? unknown; "" if signatures were not checked."""
    if rec.trust is None:
        return ""
    mark = MARKS[rec.trust.status]
    if rec.trust.status == "untrusted":
        return f"{mark} [bold red]UNTRUSTED: {escape(rec.trust.reason or '')}[/bold red] "
    return f"{mark} "


def trust_line(result: Trace) -> str | None:
    """The trust summary: counts, and each untrusted record with its reason."""
    if not result.verified:
        return None
    counts = result.trust_summary()
    parts = [f"{counts['trusted']} trusted"]
    if counts["untrusted"]:
        parts.insert(0, f"[bold red]{counts['untrusted']} UNTRUSTED[/bold red]")
    if counts["unknown"]:
        parts.append(f"{counts['unknown']} unknown")
    text = f"trust: {', '.join(parts)}"
    bad = [r for r in result.records if r.trust is not None and r.trust.status == "untrusted"]
    if bad:
        text += " (" + "; ".join(f"{escape(r.handle)}: {escape(str(r.trust))}" for r in bad) + ")"
    reasons = {r.trust.reason for r in result.records if r.trust and r.trust.status == "unknown"}
    if reasons and not bad:
        text += f" ({escape(', '.join(sorted(str(r) for r in reasons)))})"
    return text


def _record_line(result: Trace, rec: TraceRecord, lang: str) -> str:
    text = (
        f"{trust_mark(rec)}[bold]{escape(rec.title(lang))}[/bold]  {escape(rec.handle)}"
        f"  [dim]{escape(enterprise_label(result, rec, lang))} @ "
        f"{escape(node_label(result, rec.node))}[/dim]"
    )
    if rec.time:
        text += f"  [cyan]{escape(rec.time)}[/cyan]"
    if rec.stage == "inspection":
        shown = [
            f"{code}: {value}"
            for code, value in rec.items.items()
            if any(w in code.lower() for w in ("standard", "result", "cert"))
        ]
        if shown:
            text += "\n" + escape("; ".join(shown))
    return text


def render_tree(result: Trace, lang: str) -> Tree:
    """The trace as a tree: the product, then its records grouped by stage."""
    root = result.root_record
    head = (
        f"{trust_mark(root)}[bold]{escape(root.title(lang))}[/bold]  {escape(root.handle)}"
        if root
        else result.root
    )
    if root is not None:
        head += (
            f"\n[dim]{escape(enterprise_label(result, root, lang))} @ "
            f"{escape(node_label(result, root.node))}[/dim]"
        )
    tree = Tree(head)
    for stage, members in result.by_stage():
        rest = [r for r in members if r is not root]
        if not rest:
            continue
        zh, en = STAGE_TITLES[stage]
        branch = tree.add(f"[bold magenta]{en} {zh}[/bold magenta] ({len(rest)})")
        for rec in rest:
            branch.add(_record_line(result, rec, lang))
    if result.errors:
        missing = tree.add(f"[bold red]Missing ({len(result.errors)})[/bold red]")
        for error in result.errors:
            where = f" at {error.node}" if error.node else ""
            missing.add(
                f"{escape(error.handle)}  [red]{error.reason}[/red]{escape(where)}: "
                f"{escape(error.message)}"
            )
    return tree


def render_timeline(result: Trace, lang: str) -> Table:
    """Events ordered by their time items; records without a time come last."""
    table = Table(title=f"timeline of {result.root}", title_justify="left")
    for column in ("time", "stage", "record", "enterprise", "node"):
        table.add_column(column, overflow="fold")
    timed = result.timeline()
    seen = {id(r) for r in timed}
    untimed = [r for r in result.records if id(r) not in seen]
    for rec in [*timed, *untimed]:
        table.add_row(
            rec.time or "-",
            STAGE_TITLES[rec.stage][1 if lang == "en" else 0],
            f"{rec.title(lang)}\n{rec.handle}",
            enterprise_label(result, rec, lang),
            node_label(result, rec.node),
        )
    return table


def _footer(result: Trace) -> str:
    nodes = len({r.node for r in result.records})
    state = "complete" if result.complete else "[yellow]partial[/yellow]"
    return (
        f"{state}: {len(result.records)} records from {nodes} nodes in "
        f"{result.elapsed:.2f}s ({result.waves} waves, {result.requests} requests)"
    )


def run(args: argparse.Namespace) -> int:
    """Trace one identifier and print a tree, a timeline or the JSON."""
    result = run_trace_for(args, args.identifier)
    code = exit_code(result)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    elif result.root_record is not None:
        out.print(
            render_timeline(result, args.lang) if args.timeline else render_tree(result, args.lang)
        )
        out.print(_footer(result))
        line = trust_line(result)
        if line is not None:
            out.print(line)
    failure = result.root_error
    if failure is not None:
        err.print(
            f"[red]error:[/red] {escape(result.root)}: {failure.reason}: {escape(failure.message)}"
        )
    elif result.errors:
        names = ", ".join(f"{e.handle} ({e.reason})" for e in result.errors)
        err.print(f"[yellow]partial trace:[/yellow] missing {escape(names)}")
    return code


def _at_least(low: float, kind: type[int] | type[float]) -> Any:
    """An argparse type: a number of `kind`, `low` or more."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (kind is float and value <= 0):
            raise argparse.ArgumentTypeError(f"{text} is too small: it must be at least {low:g}")
        return value

    return parse


def add_trace_options(parser: argparse.ArgumentParser) -> None:
    """Limits shared by `trace` and `scan --trace`."""
    parser.add_argument(
        "--deadline",
        type=_at_least(0.01, float),
        default=DEFAULT_DEADLINE,
        help=f"seconds the whole trace may take ({DEFAULT_DEADLINE:g})",
    )
    parser.add_argument(
        "--depth",
        type=_at_least(0, int),
        default=DEFAULT_MAX_DEPTH,
        help=f"max hops ({DEFAULT_MAX_DEPTH})",
    )
    parser.add_argument(
        "--max-records",
        type=_at_least(1, int),
        default=DEFAULT_MAX_RECORDS,
        help=f"max records ({DEFAULT_MAX_RECORDS})",
    )
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="names shown (en)")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="do not check signatures (by default each record is checked from the pinned anchor)",
    )
    add_top_option(parser)


def register(sub: Any) -> None:
    """Add `trace` to the parser."""
    p = sub.add_parser(
        "trace",
        help="trace a product across nodes (exit 0 full, 3 partial)",
        description="Follow every TRACE.* value from an identifier, on whichever node holds "
        "it. Exit 0 for a full trace, 3 for a partial one (the missing identifiers are "
        "named), 1 if the identifier is unknown, 4 if it could not be reached.",
    )
    p.add_argument("identifier", help="e.g. 88.168.1/WARD-2024-000123, hdl:..., or a scanned URL")
    p.add_argument("--timeline", action="store_true", help="order events by their time items")
    p.add_argument("--json", action="store_true", help="print the trace JSON (idr.trace/1)")
    add_trace_options(p)
    p.set_defaults(func=run)
