"""Results of a benchmark run: targets, the machine, JSON files and rich tables."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"

console = Console()


@dataclass(frozen=True)
class Target:
    """One target of issue 7: a measured figure against its limit."""

    what: str
    measured: float
    limit: float
    op: Literal[">=", "<="]
    unit: str = ""

    @property
    def ok(self) -> bool:
        """True if the target is met."""
        return self.measured >= self.limit if self.op == ">=" else self.measured <= self.limit

    @property
    def miss(self) -> str:
        """How far from the limit, in the unit of the target ("" when met)."""
        if self.ok:
            return ""
        if self.limit == 0:
            return "n/a"
        factor = self.measured / self.limit
        return f"{factor:.2f}× of the limit"

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "what": self.what,
            "measured": round(self.measured, 4),
            "op": self.op,
            "limit": self.limit,
            "unit": self.unit,
            "ok": self.ok,
        }


@dataclass
class Result:
    """What one benchmark measured, its baseline from the same run, and the ratios."""

    name: str
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    ratio: dict[str, float]
    targets: list[Target] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self, machine: dict[str, Any]) -> dict[str, Any]:
        """`{"name", "machine", "metrics", "baseline", "ratio", ...}` as written to disk."""
        return {
            "name": self.name,
            "machine": machine,
            "config": self.config,
            "metrics": self.metrics,
            "baseline": self.baseline,
            "ratio": {k: round(v, 4) for k, v in self.ratio.items()},
            "targets": [t.to_json() for t in self.targets],
            "notes": self.notes,
        }


def read_results(directory: Path = RESULTS_DIR) -> tuple[list[Result], dict[str, Any]]:
    """The results written to a directory, and the machine of the newest one."""
    results: list[Result] = []
    machine: dict[str, Any] = {}
    newest = ""
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text())
        targets = [
            Target(t["what"], t["measured"], t["limit"], t["op"], t.get("unit", ""))
            for t in raw.get("targets", [])
        ]
        results.append(
            Result(
                raw["name"],
                raw["metrics"],
                raw["baseline"],
                raw["ratio"],
                targets,
                raw.get("config", {}),
                raw.get("notes", []),
            )
        )
        stamp = str(raw.get("machine", {}).get("started", ""))
        if stamp >= newest:
            newest, machine = stamp, raw["machine"]
    return results, machine


def write_result(result: Result, machine: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write bench/results/<name>.json."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    path.write_text(json.dumps(result.to_json(machine), indent=2, ensure_ascii=False) + "\n")
    return path


# -- the machine -------------------------------------------------------------------------------


def calibrate(seconds: float = 0.5) -> float:
    """Pure-Python work per second on this machine now (encode + decode a record as JSON).

    Two runs on one machine compare by their figures; it also tells a quiet machine from a
    busy one, next to the load average.
    """
    record = {
        "responseCode": 1,
        "handle": "88.168.1/CAL",
        "values": [
            {"index": i, "type": "t", "data": {"format": "string", "value": "x" * 40}, "ttl": 1}
            for i in range(20)
        ],
    }
    done = 0
    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    while time.perf_counter() < stop:
        for _ in range(50):
            json.loads(json.dumps(record))
        done += 50
    return done / (time.perf_counter() - began)


def _version(*cmd: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """The machine a run measured: CPU, memory, software versions, load, calibration."""
    return {
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_mib": _memory_mib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "redis": _version("redis-server", "--version"),
        "wrk": _version("wrk", "--version"),
        "loadavg_start": list(os.getloadavg()),
        "calibration_start": round(calibrate()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def finish_machine(machine: dict[str, Any]) -> None:
    """Add the load and calibration at the end of the run (a busy machine shows here)."""
    machine["loadavg_end"] = list(os.getloadavg())
    machine["calibration_end"] = round(calibrate())
    machine["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- tables ------------------------------------------------------------------------------------


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on the console."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(c) for c in row))
    console.print(table)


def fmt(value: Any) -> str:
    """A cell: numbers rounded to what a reader needs."""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def print_targets(results: Sequence[Result]) -> None:
    """Every target of the run, met or missed."""
    rows = []
    for result in results:
        for t in result.targets:
            rows.append(
                [result.name, t.what, t.measured, f"{t.op} {fmt(t.limit)} {t.unit}".strip(), t.ok]
            )
    if rows:
        print_table("Targets (issue 7)", ["benchmark", "target", "measured", "limit", "met"], rows)


def summary_markdown(results: Sequence[Result], machine: dict[str, Any]) -> str:
    """The run as Markdown, for BENCHMARKS.md."""
    lines = [
        f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, "
        f"{machine.get('memory_mib')} MiB; Python {machine.get('python')}, "
        f"SQLite {machine.get('sqlite')}, {machine.get('redis')}; {machine.get('wrk')}.",
        f"Load average at start {machine.get('loadavg_start')}, at end "
        f"{machine.get('loadavg_end')}; calibration {machine.get('calibration_start')} → "
        f"{machine.get('calibration_end')} records/s.",
        "",
        "| benchmark | target | measured | limit | met |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for t in result.targets:
            met = "yes" if t.ok else f"**no** ({t.miss})"
            limit = f"{t.op} {fmt(t.limit)} {t.unit}".strip()
            lines.append(f"| {result.name} | {t.what} | {fmt(t.measured)} | {limit} | {met} |")
    return "\n".join(lines) + "\n"
