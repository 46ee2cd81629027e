"""Start the whole hierarchy as one process per node, wait until ready, stop it cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from idcore.demo import build_demo
from idcore.settings import demo_admin_secret
from idcore.topology import NodeSpec, Topology

HIERARCHY_FILE = "hierarchy.json"


class LaunchError(RuntimeError):
    """A node did not come up."""


@dataclass
class NodeProcess:
    """One running node."""

    spec: NodeSpec
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """Its base URL."""
        return self.spec.url


@dataclass
class Hierarchy:
    """The running hierarchy: node processes plus the description written to hierarchy.json."""

    topology: Topology
    data_dir: Path
    store: str = "sqlite"
    redis_url: str | None = None
    seed: str = "demo"
    seed_number: int = 2024
    extra_env: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, NodeProcess] = field(default_factory=dict)

    def start(self, timeout: float = 20.0) -> None:
        """Start every node and wait until each one reports ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        topo_path = self.data_dir / "topology.json"
        topo_path.write_text(self.topology.dumps(), "utf-8")
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        try:
            for spec in self.topology.nodes:
                self.nodes[spec.name] = self._spawn(spec, topo_path, logs)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        (self.data_dir / HIERARCHY_FILE).write_text(
            json.dumps(self.describe(), ensure_ascii=False, indent=2), "utf-8"
        )

    def _spawn(self, spec: NodeSpec, topo_path: Path, logs: Path) -> NodeProcess:
        module = "resolver" if spec.is_top_level else "secondary_nodes"
        env = {
            **os.environ,
            "IDR_NODE": spec.name,
            "IDR_TOPOLOGY": str(topo_path),
            "IDR_DATA_DIR": str(self.data_dir),
            "IDR_STORE": self.store,
            "IDR_SEED": self.seed,
            "IDR_SEED_NUMBER": str(self.seed_number),
            **self.extra_env,
        }
        if self.redis_url:
            env["IDR_REDIS_URL"] = self.redis_url
        log_path = logs / f"{spec.name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: stopping the node stops its gunicorn workers too.
                start_new_session=True,
            )
        return NodeProcess(spec, process, log_path)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one node's whole process group (master and workers) and reap it.

        SIGKILL (the default) is a crash: nothing is flushed, no request is finished.
        """
        node = self.nodes[name]
        _signal_group(node.process, sig)
        try:
            node.process.wait(10)
        except subprocess.TimeoutExpired:
            _signal_group(node.process, signal.SIGKILL)
            node.process.wait(2)
        _signal_group(node.process, signal.SIGKILL)  # workers that outlived the master

    def restart(self, name: str, timeout: float = 20.0) -> NodeProcess:
        """Start a node again on its port and data (stopping it first if it runs); wait ready."""
        old = self.nodes[name]
        if old.process.poll() is None:
            self.kill(name, signal.SIGTERM)
        node = self._spawn(old.spec, self.data_dir / "topology.json", self.data_dir / "logs")
        self.nodes[name] = node
        self.wait_ready(timeout, [name])
        return node

    def wait_ready(self, timeout: float, names: list[str] | None = None) -> None:
        """Poll /_emulator/ready on every node (or the named ones) until all answer 200."""
        deadline = time.monotonic() + timeout
        pending = {n: p for n, p in self.nodes.items() if names is None or n in names}
        # No kept-alive connection may outlive the poll (one left behind by a timed-out request
        # included): a node holding an idle one lingers 2 s when stopped.
        with requests.Session() as session:
            session.headers["Connection"] = "close"
            while pending:
                for name, node in list(pending.items()):
                    if node.process.poll() is not None:
                        tail = node.log_path.read_text("utf-8", "replace")[-2000:]
                        raise LaunchError(
                            f"node {name} exited with {node.process.returncode}:\n{tail}"
                        )
                    try:
                        resp = session.get(f"{node.url}/_emulator/ready", timeout=0.5)
                        if resp.status_code == 200:
                            del pending[name]
                    except requests.RequestException:
                        pass
                if pending and time.monotonic() > deadline:
                    raise LaunchError(f"nodes not ready after {timeout}s: {sorted(pending)}")
                if pending:
                    time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every node's process group, then SIGKILL what is left."""
        for node in self.nodes.values():
            _signal_group(node.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                node.process.wait(remaining)
            except subprocess.TimeoutExpired:
                _signal_group(node.process, signal.SIGKILL)
                node.process.wait(2)
            # Workers may outlive the master for a moment: make sure the group is gone.
            _signal_group(node.process, signal.SIGKILL)
        self.nodes.clear()
        # hierarchy.json describes what runs: nothing does any more.
        (self.data_dir / HIERARCHY_FILE).unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        """The machine-readable description of what runs (hierarchy.json)."""
        tops = self.topology.top_level
        top_url = tops[0].url if tops else None
        demo = build_demo(self.topology, self.seed_number, top_url) if self.seed == "demo" else None
        nodes = []
        for spec in self.topology.nodes:
            admin = f"0.NA/{spec.prefix}" if spec.is_top_level else f"{spec.prefix}/ADMIN"
            nodes.append(
                {
                    "name": spec.name,
                    "role": spec.role,
                    "url": spec.url,
                    "prefix": spec.prefix,
                    "title": spec.title,
                    "admin": f"300:{admin}",
                    "secret": demo_admin_secret(spec.name),
                }
            )
        enterprises = []
        samples: dict[str, Any] = {"product": None, "identifiers": []}
        if demo is not None:
            enterprises = [
                {
                    "prefix": e.prefix,
                    "node": e.node,
                    "name": e.name,
                    "name_en": e.name_en,
                    "admin": e.admin,
                    "secret": e.secret,
                }
                for e in demo.enterprises
            ]
            samples = {"product": demo.product, "identifiers": demo.samples}
        return {
            "nodes": nodes,
            "enterprises": enterprises,
            "samples": samples,
            "store": self.store,
            "data_dir": str(self.data_dir),
            "note": "demo data: prefixes, names and secrets are invented for the emulator",
        }


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def read_hierarchy(data_dir: Path) -> dict[str, Any]:
    """Read data/hierarchy.json written by `idr up`."""
    path = data_dir / HIERARCHY_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: start the hierarchy with `idr up` (make run)")
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data
