"""The load generator: wrk (Debian's package) with bench/ids.lua, else a Python asyncio tool.

Both keep `connections` HTTP/1.1 keep-alive connections busy for `duration` seconds,
each request naming another identifier from a `Paths` set, and report throughput and
latency percentiles. Loopback only: the URL must be http://127.0.0.1:<port>.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

LUA = Path(__file__).resolve().parent / "ids.lua"
Order = Literal["random", "seq"]
Tool = Literal["auto", "wrk", "python"]


@dataclass(frozen=True)
class Paths:
    """A set of request paths: `pattern % n` for n in lo..hi, or an explicit list."""

    pattern: str = ""
    lo: int = 0
    hi: int = 0
    items: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: list[str]) -> Paths:
        """An explicit list of paths."""
        if not items:
            raise ValueError("Paths.of needs at least one path")
        return cls(items=tuple(items))

    @classmethod
    def numbered(cls, pattern: str, count: int, start: int = 0) -> Paths:
        """`pattern % n` for n in start .. start+count-1 (pattern like '/api/handles/x/B%07d')."""
        if count < 1:
            raise ValueError(f"Paths.numbered needs count >= 1, not {count}")
        return cls(pattern=pattern, lo=start, hi=start + count - 1)

    def __len__(self) -> int:
        return len(self.items) if self.items else self.hi - self.lo + 1

    def path(self, i: int) -> str:
        """The i-th path (0-based)."""
        return self.items[i] if self.items else self.pattern % (self.lo + i)


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        """Requests per second (errors included: they are counted separately)."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, float | int | str]:
        """The JSON form, rounded."""
        return {
            "tool": self.tool,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
        }


def wrk_available() -> bool:
    """True if wrk is on PATH (apt-get install wrk)."""
    return shutil.which("wrk") is not None


def pick_tool(tool: Tool) -> Literal["wrk", "python"]:
    """The tool to use: wrk when asked for or available, else Python."""
    if tool == "wrk" and not wrk_available():
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (or --tool python)")
    if tool == "auto":
        return "wrk" if wrk_available() else "python"
    return tool


def run_load(
    base_url: str,
    paths: Paths,
    connections: int,
    duration: float,
    *,
    order: Order = "random",
    tool: Tool = "auto",
) -> LoadResult:
    """Load `base_url` with `connections` connections for `duration` seconds."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"load only http://127.0.0.1:<port>, not {base_url!r}")
    if not 1 <= connections <= 256 or not 0 < duration <= 600:
        raise ValueError(f"1..256 connections for up to 600 s, not {connections} / {duration}")
    if pick_tool(tool) == "wrk":
        return _wrk(base_url, paths, connections, duration, order)
    return asyncio.run(_python(parts.port, paths, connections, duration, order))


# -- wrk -----------------------------------------------------------------------------------------


def _wrk(
    base_url: str, paths: Paths, connections: int, duration: float, order: Order
) -> LoadResult:
    threads = min(2, connections)
    with tempfile.TemporaryDirectory(prefix="idr-bench-") as tmp:
        if paths.items:
            listing = Path(tmp) / "paths.txt"
            listing.write_text("\n".join(paths.items) + "\n")
            args = ["file", str(listing), order, str(threads)]
        else:
            # Lua's string.format reads "%07d" as Python's % does.
            args = ["pattern", paths.pattern, str(paths.lo), str(paths.hi), order, str(threads)]
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout", "5s",
            "-s", str(LUA),
            base_url,
            "--", *args,
        ]  # fmt: skip
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}"
        )
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(int(raw[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        tool="wrk",
        connections=connections,
        seconds=raw["duration_us"] / 1e6,
        requests=int(raw["requests"]),
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
    )


# -- Python fallback -------------------------------------------------------------------------


async def _python(
    port: int, paths: Paths, connections: int, duration: float, order: Order
) -> LoadResult:
    latencies: list[float] = []
    errors = [0]
    began = time.perf_counter()
    stop = began + duration
    tasks = [
        _connection(port, paths, c, connections, order, stop, latencies, errors)
        for c in range(connections)
    ]
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - began
    latencies.sort()
    return LoadResult(
        tool="python",
        connections=connections,
        seconds=seconds,
        requests=len(latencies),
        errors=errors[0],
        p50_ms=_pct(latencies, 50),
        p90_ms=_pct(latencies, 90),
        p99_ms=_pct(latencies, 99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0,
        mean_ms=sum(latencies) / len(latencies) * 1000 if latencies else 0.0,
    )


def _pct(sorted_seconds: list[float], pct: float) -> float:
    if not sorted_seconds:
        return 0.0
    i = min(len(sorted_seconds) - 1, int(len(sorted_seconds) * pct / 100))
    return sorted_seconds[i] * 1000


async def _connection(
    port: int,
    paths: Paths,
    number: int,
    connections: int,
    order: Order,
    stop: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    rng = random.Random(number)
    size = len(paths)
    position = number % size
    host = f"127.0.0.1:{port}".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            if order == "seq":
                i, position = position, (position + connections) % size
            else:
                i = rng.randrange(size)
            request = b"GET " + paths.path(i).encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if status >= 400:
                errors[0] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except (ConnectionError, asyncio.IncompleteReadError):
        errors[0] += 1
    finally:
        writer.close()


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, length, close
