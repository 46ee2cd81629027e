"""A private, throw-away Redis Cluster for tests: three masters, no replicas, free ports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

from tests.support.hierarchy import free_ports

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
SLOTS = 16384


class RedisClusterServer:
    """`masters` redis-server processes joined by `redis-cli --cluster create` on 127.0.0.1.

    Each node gets a free client port and a free cluster-bus port (`--cluster-port`, so
    the bus is not port + 10000, which may be taken or beyond 65535) and its own
    directory; `close()` stops every process and removes the directories.
    """

    def __init__(self, masters: int = 3) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError(
                "redis-server and redis-cli are needed (apt-get install redis-server)"
            )
        if masters < 3:
            raise ValueError(f"a Redis Cluster needs at least 3 masters, not {masters}")
        self.server, self.cli = server, cli
        self.masters = masters
        self.dir = Path(tempfile.mkdtemp(prefix="idr-redis-cluster-"))
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The cluster URL RedisStore understands (any one node names the cluster)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisClusterServer:
        """Start the nodes, create the cluster and wait until every node says it is ok."""
        try:
            ports = free_ports(2 * self.masters)
            self.ports = ports[: self.masters]
            for port, bus in zip(self.ports, ports[self.masters :], strict=True):
                self._launch(port, bus)
            for port in self.ports:
                self._wait(port, lambda c: bool(c.ping()), "answer PING")
            self._create()
            for port in self.ports:
                self._wait(port, self._joined, "report cluster_state:ok")
        except BaseException:
            self.close()
            raise
        return self

    def _launch(self, port: int, bus: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir()
        args = [
            self.server,
            "--port", str(port),
            "--cluster-port", str(bus),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node_dir / "nodes.conf"),
            "--cluster-node-timeout", "5000",
            "--dir", str(node_dir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--logfile", str(node_dir / "redis.log"),
        ]  # fmt: skip
        self.processes.append(
            subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def _create(self) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        done = subprocess.run(
            [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-1500:]
            raise RuntimeError(f"redis-cli --cluster create failed ({done.returncode}): {output}")

    def _wait(self, port: int, ready: Callable[[redis.Redis], bool], what: str) -> None:
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                for process in self.processes:
                    if process.poll() is not None:
                        raise RuntimeError(f"a cluster node exited at start: {self._log_tail()}")
                try:
                    if ready(client):
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis cluster node {port} did not {what} within {START_TIMEOUT:g} s: "
                        f"{self._log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def _joined(self, client: redis.Redis) -> bool:
        """True once the node sees every slot served and every master known."""
        info = _cluster_info(client)
        return (
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == str(SLOTS)
            and info.get("cluster_known_nodes") == str(self.masters)
        )

    def _log_tail(self) -> str:
        tails = []
        for log in sorted(self.dir.glob("*/redis.log")):
            lines = log.read_text(errors="replace").splitlines()
            tails.append(f"{log.parent.name}: " + " | ".join(lines[-3:]))
        return "; ".join(tails) or "(no log)"

    def flush(self) -> None:
        """Empty every master."""
        for port in self.ports:
            client = redis.Redis(host="127.0.0.1", port=port)
            try:
                client.flushall()
            finally:
                client.close()

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove the directories."""
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO of one node as a dict."""
    info = client.cluster("INFO")
    if isinstance(info, dict):  # redis-py may parse it already
        return {str(k): str(v) for k, v in info.items()}
    text = info.decode() if isinstance(info, bytes) else str(info)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
