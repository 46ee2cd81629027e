"""Helpers for the trace, page and label tests: `idr` runs, chains over REST, a mute node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from clients.launcher import Hierarchy, read_hierarchy

IDR = Path(sys.executable).with_name("idr")
CMD_TIMEOUT = 30.0


def run_idr(
    data_dir: Path, *args: str, stdin: str | None = None, timeout: float = CMD_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`idr --data-dir <data_dir> ARGS` as a user runs it: wide, no colour; output captured."""
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "220"}
    for name in ("IDR_DATA_DIR", "IDR_TOP"):
        env.pop(name, None)
    return subprocess.run(
        [str(IDR), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def info(hierarchy: Hierarchy) -> dict[str, Any]:
    """hierarchy.json of a running hierarchy."""
    return read_hierarchy(hierarchy.data_dir)


def node(hierarchy: Hierarchy, name: str) -> dict[str, Any]:
    """One node's entry in hierarchy.json (url, prefix, admin, secret)."""
    found: dict[str, Any] = next(n for n in info(hierarchy)["nodes"] if n["name"] == name)
    return found


def home_of(hierarchy: Hierarchy, handle: str) -> dict[str, Any]:
    """The secondary node whose prefix homes a handle (longest match)."""
    prefix = handle.split("/", 1)[0]
    homes = [
        n
        for n in info(hierarchy)["nodes"]
        if n["role"] == "secondary" and (prefix + ".").startswith(n["prefix"] + ".")
    ]
    return max(homes, key=lambda n: len(n["prefix"]))


def put_record(hierarchy: Hierarchy, handle: str, *values: tuple[str, str]) -> None:
    """Register `handle` at its secondary node with (type, data) values, as its node admin."""
    home = home_of(hierarchy, handle)
    body = [{"index": 1, "type": "URL", "data": f"{top_url(hierarchy)}/t/{handle}"}]
    body += [{"index": 2000 + i, "type": t, "data": d} for i, (t, d) in enumerate(values)]
    resp = requests.put(
        f"{home['url']}/api/handles/{handle}",
        json={"values": body},
        auth=(home["admin"], home["secret"]),
        timeout=10,
    )
    assert resp.status_code in (200, 201), resp.text


def register_site(hierarchy: Hierarchy, prefix: str, base_url: str) -> None:
    """Delegate a new prefix (`0.NA/<prefix>`) to `base_url` at the primary top-level node."""
    top = node(hierarchy, "cq-top")
    site = {
        "index": 1,
        "type": "HS_SITE",
        "data": {
            "format": "site",
            "value": {
                "version": 1,
                "primarySite": True,
                "attributes": [{"name": "baseUrl", "value": base_url}],
                "servers": [{"serverId": 1, "address": "127.0.0.1", "interfaces": []}],
            },
        },
    }
    resp = requests.put(
        f"{top['url']}/api/handles/0.NA/{prefix}",
        json={"values": [site]},
        auth=(top["admin"], top["secret"]),
        timeout=10,
    )
    assert resp.status_code in (200, 201), resp.text


def top_url(hierarchy: Hierarchy) -> str:
    """The primary top-level node's base URL."""
    return str(node(hierarchy, "cq-top")["url"])


# A desk whose parts live on three secondary nodes, with relations of the user's own.
DESK = "88.168.1/SYS-DESK-1"
DESK_CHAIN: Sequence[tuple[str, Sequence[tuple[str, str]]]] = (
    (
        DESK,
        (
            ("name", "系统测试书桌 / system-test desk"),
            ("made_on", "2024-06-01"),
            ("TRACE.ANYTHING", "88.169.1/SYS-PLANK-1"),
            ("TRACE.INPUT", "88.170.1/SYS-HINGE-1"),
            ("TRACE.INSPECTION", "88.171.1/SYS-RPT-1"),
        ),
    ),
    (
        "88.169.1/SYS-PLANK-1",
        (("name", "plank lot"), ("sawn_on", "2024-04-02"), ("TRACE.ORIGIN", "88.169.2/SYS-LOG")),
    ),
    ("88.169.2/SYS-LOG", (("name", "log lot"), ("felled", "2024-01-15"))),
    ("88.170.1/SYS-HINGE-1", (("name", "hinge lot"), ("made_on", "2024-03-01"))),
    (
        "88.171.1/SYS-RPT-1",
        (
            ("name", "甲醛释放量检测 / formaldehyde test"),
            ("standard", "GB 18584-2001"),
            ("result", "合格 / pass"),
            ("certificate_no", "SYS-CERT-0001"),
            ("tested_on", "2024-06-03"),
        ),
    ),
)


def register_desk(hierarchy: Hierarchy) -> str:
    """Write DESK_CHAIN through the REST API; the desk's identifier."""
    for handle, values in DESK_CHAIN:
        put_record(hierarchy, handle, *values)
    return DESK


@contextmanager
def mute_server() -> Iterator[str]:
    """A TCP server on a free port that accepts connections and never answers; its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # the kernel completes handshakes; nobody ever reads or writes
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
