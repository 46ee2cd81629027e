"""`idr fault NODE ACTION`: make a node misbehave on demand (latency, errors, drops, outage)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from clients.console import EXIT_OK, EXIT_USAGE, data_dir, err, out
from clients.emulator import EmulatorClient, UnknownNode, node_url

KINDS = ("error", "latency", "drop", "outage")
ACTIONS = (*KINDS, "list", "clear", "remove", "log")


def probability(text: str) -> float:
    """`0.3` or `30%`."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a probability: write 0.3 or 30%"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1 (0% and 100%)")
    return value


def rule_of(args: argparse.Namespace) -> dict[str, Any]:
    """The fault rule the options describe (wire form)."""
    rule: dict[str, Any] = {"kind": args.action, "route": args.route}
    optional = {
        "id": args.id,
        "methods": args.method,
        "prefix": args.prefix,
        "probability": args.probability,
        "seed": args.seed,
        "latencyMs": args.ms,
        "latencyMaxMs": args.max_ms,
        "responseCode": args.code,
        "httpStatus": args.status,
        "message": args.message,
        "limit": args.limit,
    }
    rule.update({k: v for k, v in optional.items() if v is not None})
    if args.drop:
        rule["drop"] = True
    return rule


def run(args: argparse.Namespace) -> int:
    """Add, replace, list, remove or clear a node's faults."""
    try:
        url = node_url(args.node, data_dir(args))
    except UnknownNode as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    with EmulatorClient(url) as node:
        if args.action in KINDS:
            rule = rule_of(args)
            if args.replace:
                node.set_faults([rule])
            else:
                node.add_faults([rule])
        elif args.action == "clear":
            node.clear_faults()
        elif args.action == "remove":
            if not args.id:
                err.print("[red]error:[/red] `idr fault NODE remove` needs --id (see `list`)")
                return EXIT_USAGE
            node.remove_fault(args.id)
        elif args.action == "log":
            events = node.fault_log(args.limit)
            if args.json:
                print(json.dumps(events, ensure_ascii=False, indent=2))
            else:
                _print_log(events)
            return EXIT_OK
        rules = node.faults()
    if args.json:
        print(json.dumps(rules, ensure_ascii=False, indent=2))
    else:
        _print_rules(args.node, rules)
    return EXIT_OK


def _print_rules(name: str, rules: list[dict[str, Any]]) -> None:
    if not rules:
        out.print(f"{name}: no faults")
        return
    table = Table(title=f"faults on {name}", title_justify="left")
    for column in ("id", "kind", "route", "prefix", "p", "seed", "effect", "matched", "injected"):
        table.add_column(column)
    for rule in rules:
        methods = f" {','.join(rule['methods'])}" if rule.get("methods") else ""
        table.add_row(
            rule["id"],
            rule["kind"],
            rule.get("route", "*") + methods,
            rule.get("prefix", ""),
            f"{rule.get('probability', 1.0):g}",
            str(rule["seed"]),
            _effect(rule),
            str(rule["matched"]),
            str(rule["injected"]),
        )
    out.print(table)


def _effect(rule: dict[str, Any]) -> str:
    parts = []
    if rule.get("latencyMs") or rule.get("latencyMaxMs"):
        low, high = rule.get("latencyMs", 0), rule.get("latencyMaxMs")
        parts.append(f"+{low:g}-{high:g} ms" if high else f"+{low:g} ms")
    if rule["kind"] == "error" or (rule["kind"] == "outage" and not rule.get("drop")):
        default = (3, 503) if rule["kind"] == "outage" else (2, 500)
        code = rule.get("responseCode", default[0])
        status = rule.get("httpStatus", default[1] if code == default[0] else "")
        parts.append(f"responseCode {code} HTTP {status}".strip())
    if rule["kind"] == "drop" or rule.get("drop"):
        parts.append("drop connection")
    if rule.get("limit"):
        parts.append(f"at most {rule['limit']}x")
    return ", ".join(parts)


def _print_log(events: list[dict[str, Any]]) -> None:
    table = Table(title="injected faults", title_justify="left")
    for column in ("seq", "rule", "kind", "method", "path", "latency ms", "action"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e["seq"]),
            e["rule"],
            e["kind"],
            e["method"],
            e["path"],
            f"{e['latencyMs']:g}",
            e["action"] or "",
        )
    out.print(table)


def register(sub: Any) -> None:
    """Add `fault` to the parser."""
    p = sub.add_parser(
        "fault",
        help="inject faults into a node (error, latency, drop, outage; list, clear)",
        description="Add a fault to NODE (a name from `idr status` or a URL), or list, "
        "remove or clear its faults. With --seed a run repeats exactly.",
    )
    p.add_argument("node", help="node name (furniture, cq-top, ...) or base URL")
    p.add_argument(
        "action",
        choices=ACTIONS,
        help="add a fault (error, latency, drop, outage), or list, clear, remove, log",
    )
    p.add_argument("--route", default="*", help="fnmatch pattern on the path (*)")
    p.add_argument("--method", action="append", help="only this HTTP method (repeatable)")
    p.add_argument("--prefix", help="only requests about identifiers under this prefix")
    p.add_argument("-p", "--probability", type=probability, help="0.3 or 30%% (1)")
    p.add_argument("--seed", type=int, help="seed of this fault's random stream")
    p.add_argument("--ms", type=float, help="latency in ms (the lower bound with --max-ms)")
    p.add_argument("--max-ms", type=float, help="random latency up to this many ms")
    p.add_argument("--code", type=int, help="responseCode of the error answer (2; outage 3)")
    p.add_argument("--status", type=int, help="HTTP status of the error answer")
    p.add_argument("--message", help="message of the error answer")
    p.add_argument("--drop", action="store_true", help="outage: drop connections instead")
    p.add_argument("--limit", type=int, help="inject at most N times (log: show the last N)")
    p.add_argument("--id", help="id of the fault (for remove: which one)")
    p.add_argument("--replace", action="store_true", help="replace every existing fault")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
