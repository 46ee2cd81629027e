"""Start the emulated hierarchy as real processes on free ports, and inspect what runs."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from clients.harness import free_ports as free_ports  # the pytest plugin's, one for all
from clients.launcher import Hierarchy
from idcore.topology import Topology, load_topology

START_TIMEOUT = 30.0


def topology_on_free_ports(nodes: Iterable[str] | None = None) -> Topology:
    """The default topology (or only the named nodes, in topology order) moved to free ports."""
    base = load_topology()
    if nodes is not None:
        wanted = set(nodes)
        unknown = wanted - {n.name for n in base.nodes}
        if unknown:
            raise KeyError(f"unknown nodes {sorted(unknown)}")
        base = Topology(nodes=[n for n in base.nodes if n.name in wanted])
    ports = free_ports(len(base.nodes))
    return base.with_ports({spec.name: port for spec, port in zip(base.nodes, ports, strict=True)})


def start_hierarchy(
    tmp_path: Path,
    store: str = "sqlite",
    redis_url: str | None = None,
    nodes: Iterable[str] | None = None,
) -> Hierarchy:
    """Start the default hierarchy (or a subset of its nodes) on free ports as real processes."""
    hierarchy = Hierarchy(
        topology=topology_on_free_ports(nodes),
        data_dir=Path(tmp_path) / "data",
        store=store,
        redis_url=redis_url,
    )
    hierarchy.start(timeout=START_TIMEOUT)
    return hierarchy


# --- processes ---------------------------------------------------------------------------


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids of this user's live processes whose environment holds `name=value` exactly."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if needle in environ.split(b"\0") and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def node_pids(data_dir: Path) -> list[int]:
    """Pids of node processes (gunicorn masters and workers) started for this data dir."""
    return pids_with_env("IDR_DATA_DIR", str(data_dir))


def is_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (a zombie holds no port and runs no code)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_is_free(port: int) -> bool:
    """True if a server could listen on 127.0.0.1:port now (SO_REUSEADDR, as gunicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            return False
        return True


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll `condition` until true; seconds it took. AssertionError naming `what` on timeout."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - began
