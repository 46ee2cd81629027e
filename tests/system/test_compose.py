"""docker-compose.yml without a Docker engine: the file agrees with the topology, and its
services, run as local processes, bring the hierarchy up, seed it and print the trace.

The local run follows the file, not a copy of it: each service's command with the image's
ENV and the service's environment, started in `depends_on` order, waiting on the same
healthcheck commands. What a container network provides is mapped onto this machine:
service host names become 127.0.0.1, each node listens on the host port the file
publishes (chosen free through the file's own port variables), the `redis` service is a
private redis-server, and container paths become directories under the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import yaml

from idcore.topology import Topology, load_topology
from tests.support.hierarchy import free_ports
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_ROOT = "/app"  # the Dockerfile's WORKDIR, where the project is copied
BIN = Path(sys.executable).parent
PRODUCT = "88.168.1/WARD-2024-000123"
RUN_TIMEOUT = 120.0

# -- reading the file as compose does ------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_]\w*))")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR:?error}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3) or ""
        current = env.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-") and unset:
            return arg
        if op in (":?", "?") and unset:
            raise ValueError(f"compose variable {name} is required: {arg}")
        return current or ""

    return _VARIABLE.sub(one, value)


def load_compose(env: dict[str, str]) -> dict[str, Any]:
    """docker-compose.yml with anchors and merge keys resolved and variables substituted."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return interpolate(data, env)  # type: ignore[no-any-return]


def image_env() -> dict[str, str]:
    """The ENV instructions of the Dockerfile: every container starts with them."""
    text = DOCKERFILE.read_text("utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency → condition, from the long or the short form."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def published(service: dict[str, Any]) -> tuple[int, int] | None:
    """(host port, container port) of a service's one published port."""
    ports = service.get("ports") or []
    if not ports:
        return None
    host, container = str(ports[0]).rsplit(":", 1)
    return int(host.rsplit(":", 1)[-1]), int(container)


def port_variables() -> list[str]:
    """The variables the file lets a user move published ports with."""
    raw = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]
    names = []
    for service in raw.values():
        for entry in service.get("ports") or []:
            found = re.match(r"\$\{(\w+):-\d+\}:\d+$", str(entry))
            assert found, f"published port {entry!r} is not overridable as ${{VAR:-default}}:port"
            names.append(found.group(1))
    return names


def node_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run a node of the hierarchy (they name one with IDR_NODE)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "IDR_NODE" in (svc.get("environment") or {})
    }


# -- the file agrees with the topology -----------------------------------------------------


def test_compose_and_topology_describe_the_same_nodes() -> None:
    compose = load_compose({})
    topology = load_topology()
    nodes = node_services(compose)
    assert list(nodes) == [n.name for n in topology.nodes], "same nodes, in topology order"
    docker_topology = load_topology(ROOT / "docker" / "topology.toml")
    assert docker_topology.nodes == [
        n.model_copy(update={"host": n.name}) for n in topology.nodes
    ], "docker/topology.toml is the default topology with each host set to its service name"
    for spec in topology.nodes:
        service = nodes[spec.name]
        env = {**image_env(), **service["environment"]}
        assert env["IDR_NODE"] == spec.name
        assert env["IDR_TOPOLOGY"] == f"{IMAGE_ROOT}/docker/topology.toml"
        module = "resolver" if spec.is_top_level else "secondary_nodes"
        assert service["command"] == ["python", "-m", module], spec.name
        assert published(service) == (spec.port, spec.port), "DESIGN.md §2 ports by default"
        assert env["IDR_PUBLIC_URL"] == f"http://{spec.name}:{spec.port}"
        assert env["IDR_STORE"] == "redis" and env["IDR_REDIS_URL"].startswith("redis://redis:")
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "idcore.healthcheck"]
        assert depends_on(service).get("redis") == "service_healthy"
    assert depends_on(nodes["cd-backup"])["cq-top"] == "service_healthy"


def test_seed_waits_for_every_node_and_demo_for_the_seed() -> None:
    compose = load_compose({})
    services = compose["services"]
    assert depends_on(services["seed"]) == dict.fromkeys(node_services(compose), "service_healthy")
    assert depends_on(services["demo"]) == {"seed": "service_completed_successfully"}
    assert services["demo"]["command"][:2] == ["idr", "trace"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert redis["healthcheck"]["test"][:2] == ["CMD", "redis-cli"]


def test_the_image_is_slim_non_root_and_installs_once() -> None:
    text = DOCKERFILE.read_text("utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert len(re.findall(r"pip install", text)) == 1 and "pip install ." in text
    assert not re.search(
        r"\b(curl|wget)\b", "\n".join(re.findall(r"^(?:RUN|HEALTHCHECK).*", text, re.M))
    )
    assert "idcore.healthcheck" in text
    for folder in ("idcore", "resolver", "secondary_nodes", "clients", "docker"):
        assert re.search(rf"^COPY {folder} \./{folder}$", text, re.M), folder


def test_published_ports_can_be_moved() -> None:
    variables = port_variables()
    assert len(variables) == len(load_topology().nodes)
    moved = load_compose({variables[0]: "18000"})
    first = next(iter(node_services(moved).values()))
    assert published(first) == (18000, load_topology().nodes[0].port)


# -- the services, run as local processes ---------------------------------------------------


@dataclass
class LocalCompose:
    """docker-compose.yml's services as processes on this machine."""

    tmp: Path
    redis_url: str
    env: dict[str, str]
    compose: dict[str, Any] = field(init=False)
    topology_path: Path = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    healthy: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.compose = load_compose(self.env)
        self.topology_path = self.tmp / "topology.json"
        self.topology_path.write_text(self.local_topology().dumps(), "utf-8")

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return dict(self.compose["services"])

    def published_port(self, service: str) -> int:
        ports = published(self.services[service])
        assert ports, f"{service} publishes no port"
        return ports[0]

    def local_topology(self) -> Topology:
        """The file's topology with service names on 127.0.0.1 and nodes on published ports."""
        path = self.services["cq-top"]["environment"]["IDR_TOPOLOGY"]
        in_repo = load_topology(ROOT / Path(path).relative_to(IMAGE_ROOT))
        nodes = [
            n.model_copy(update={"host": "127.0.0.1", "port": self.published_port(n.host)})
            for n in in_repo.nodes
        ]
        return Topology(nodes=nodes)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.published_port(service)}"

    # What the container network and volumes provided, on this machine.
    def localise(self, service: str, value: str) -> str:
        redis_host = re.sub(r"^redis://([^/]+).*$", r"\1", self.redis_url)

        def address(match: re.Match[str]) -> str:
            scheme, host, port = match.group(1), match.group(2), int(match.group(3))
            if host == "redis":
                return f"{scheme}://{redis_host}"
            ports = published(self.services.get(host, {}))
            if ports and ports[1] == port:
                return f"{scheme}://127.0.0.1:{ports[0]}"
            return match.group(0)

        value = re.sub(r"(https?|redis)://([a-z0-9-]+):(\d+)", address, value)
        if value == "0.0.0.0":
            return "127.0.0.1"
        if value == f"{IMAGE_ROOT}/docker/topology.toml":
            return str(self.topology_path)
        if value.startswith("/"):
            for mount in self.services[service].get("volumes") or []:
                volume, target = str(mount).split(":", 1)
                if value == target or value.startswith(target + "/"):
                    return str(self.tmp / "volumes" / volume) + value[len(target) :]
            return str(self.tmp / "containers" / service) + value
        return value

    def service_env(self, service: str) -> dict[str, str]:
        env = {**image_env(), **(self.services[service].get("environment") or {})}
        local = {k: self.localise(service, str(v)) for k, v in env.items()}
        for key, value in local.items():
            if key.endswith("_DIR"):
                Path(value).mkdir(parents=True, exist_ok=True)
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        return {**base, "NO_COLOR": "1", "TERM": "dumb", **local}

    def argv(self, command: list[str]) -> list[str]:
        """The image's programs: its python and idr are this venv's."""
        head = {"python": sys.executable, "idr": str(BIN / "idr")}.get(command[0], command[0])
        return [head, *command[1:]]

    # Starting, health, stopping.
    def start(self, service: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / "logs").joinpath(f"{service}.log")
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                self.argv(self.services[service]["command"]),
                env=self.service_env(service),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes[service] = process
        return process

    def log(self, service: str) -> str:
        return (self.tmp / "logs" / f"{service}.log").read_text("utf-8", "replace")

    def check_health(self, service: str) -> bool:
        test = self.services[service]["healthcheck"]["test"]
        assert test[0] == "CMD", f"{service}: healthcheck must be exec form"
        result = subprocess.run(
            self.argv(test[1:]),
            env=self.service_env(service),
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def condition_met(self, service: str, condition: str) -> bool:
        """Whether a dependency meets its `depends_on` condition now (without waiting)."""
        if service == "redis":  # the test's own redis-server, started and answering
            return True
        process = self.processes.get(service)
        if process is None:
            return False
        if condition == "service_completed_successfully":
            code = process.poll()
            assert code in (None, 0), f"{service} exited {code}:\n{self.log(service)}"
            return code == 0
        if condition == "service_healthy":
            assert process.poll() is None, f"{service} exited:\n{self.log(service)}"
            return service in self.healthy
        return True

    def needed(self, service: str) -> list[str]:
        """The service and everything it depends on, dependencies first."""
        out: list[str] = []
        for dep in depends_on(self.services[service]):
            out += [s for s in self.needed(dep) if s not in out]
        return [*out, service] if service != "redis" else out

    def up(self, target: str, timeout: float = RUN_TIMEOUT) -> None:
        """Start `target` as compose would: every service once its conditions are met,
        independent services together, healthchecks polled until they pass."""
        deadline = time.monotonic() + timeout
        wanted = self.needed(target)
        while target not in self.processes:
            unhealthy = [
                s
                for s in wanted
                if s in self.processes
                and s not in self.healthy
                and "healthcheck" in self.services[s]
                and self.processes[s].poll() is None
            ]
            with ThreadPoolExecutor(max_workers=max(1, len(unhealthy))) as pool:
                for service, ok in zip(
                    unhealthy, pool.map(self.check_health, unhealthy), strict=True
                ):
                    if ok:
                        self.healthy.add(service)
            for service in wanted:
                if service in self.processes:
                    continue
                conditions = depends_on(self.services[service]).items()
                if all(self.condition_met(dep, cond) for dep, cond in conditions):
                    self.start(service)
            if time.monotonic() > deadline:
                waiting = [s for s in wanted if s not in self.processes]
                logs = "\n".join(f"--- {s}\n{self.log(s)[-1500:]}" for s in self.processes)
                raise AssertionError(f"not started after {timeout:g}s: {waiting}\n{logs}")
            time.sleep(0.1)

    def wait_completed(self, service: str) -> None:
        process = self.processes[service]
        try:
            code = process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{service} still running:\n{self.log(service)}") from None
        assert code == 0, f"{service} exited {code}:\n{self.log(service)}"

    def down(self) -> None:
        for process in self.processes.values():
            _signal(process, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait(5)
            _signal(process, signal.SIGKILL)  # gunicorn workers, should any outlive the master


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@pytest.fixture(scope="module")
def local_compose(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[LocalCompose]:
    """The compose file's services on free ports and the test's redis-server, for this module."""
    variables = port_variables()
    env = {
        name: str(port) for name, port in zip(variables, free_ports(len(variables)), strict=True)
    }
    running = LocalCompose(tmp_path_factory.mktemp("compose"), redis_server.url, env)
    try:
        yield running
    finally:
        running.down()
        client = redis.Redis.from_url(redis_server.url)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.mark.redis
def test_compose_services_bring_up_seed_and_trace(local_compose: LocalCompose) -> None:
    began = time.monotonic()
    local_compose.up("demo")
    local_compose.wait_completed("demo")
    elapsed = time.monotonic() - began

    seed = local_compose.log("seed")
    assert f"demo data loaded: {PRODUCT} resolves through" in seed, seed
    assert re.search(r"\d+ of \d+ identifiers written", seed), seed
    trace = local_compose.log("demo")
    assert PRODUCT in trace, trace
    handles = set(re.findall(r"\b88\.1\d\d\.\d+/[A-Z0-9-]+", trace))
    assert len(handles) >= 15, trace
    for node in ("furniture", "timber", "materials", "inspection"):
        assert node in trace, f"{node} missing from the trace:\n{trace}"
    assert "partial" not in trace.lower(), trace

    # The hierarchy the file describes now runs on the published ports, on the test's Redis.
    stats = requests.get(f"{local_compose.url('cq-top')}/api/stats", timeout=10).json()
    names = [n["node"] for n in stats["nodes"]]
    assert set(names) == set(node_services(local_compose.compose))
    assert stats["totals"]["up"] == len(names)
    assert stats["totals"]["registrations"] > 0, "the seed service registered through the API"
    described = local_compose.tmp / "volumes" / "demo-data" / "hierarchy.json"
    assert described.exists(), "the seed service describes the hierarchy in the shared volume"
    print(f"compose services up, seeded and traced in {elapsed:.1f}s")


@pytest.mark.redis
def test_seed_adds_products_only_once(local_compose: LocalCompose) -> None:
    local_compose.up("seed")  # already done by the test above when run together
    local_compose.wait_completed("seed")
    first = requests.get(f"{local_compose.url('furniture')}/api/stats", timeout=10).json()
    again = local_compose.start("seed")
    assert again.wait(RUN_TIMEOUT) == 0, local_compose.log("seed")
    assert "were added before: not again" in local_compose.log("seed")
    second = requests.get(f"{local_compose.url('furniture')}/api/stats", timeout=10).json()
    assert second["registrations"] == first["registrations"]
