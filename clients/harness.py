"""The emulated hierarchy for users' own tests: start it, reach it, make it misbehave, stop it.

Three ways to run it, one interface:

- `inprocess` (default): every node's app in this process, each behind a threaded WSGI
  server on a free loopback port. Starts in well under a second and any HTTP client
  (yours included) reaches it.
- `wsgi`: the same apps without sockets; only `EmulatedHierarchy.session` (and the
  `resolver` built on it) reach them, at `http://<node>.idr.invalid:<port>`.
- `processes`: one gunicorn process per node on free ports, exactly as `idr up` runs them.

The pytest plugin (clients/pytest_plugin.py) wraps this in fixtures; it works without
pytest too:

    with EmulatedHierarchy() as idr:
        record = idr.resolver.resolve(idr.samples["product"])
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from clients.emulator import EmulatorClient
from clients.launcher import Hierarchy
from clients.resolver import Resolver
from clients.transport import mount_apps
from idcore.identifier import is_within, parse_handle
from idcore.settings import NodeSettings
from idcore.topology import NodeSpec, Topology, load_topology

Mode = Literal["inprocess", "wsgi", "processes"]
MODES: tuple[Mode, ...] = ("inprocess", "wsgi", "processes")
START_TIMEOUT = 30.0
CONTROL_TIMEOUT = 60.0
FOLLOWER = "idr.follower"  # resolver.replication_api.FOLLOWER: a backup's replication thread


class SeedFileError(ValueError):
    """A seed file that cannot be loaded: names the file, the record and what was wrong."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One running node: where it is and how to write to it."""

    name: str
    role: str
    prefix: str
    url: str
    title: str
    admin: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        """HTTP Basic credentials of the node's admin, for `requests(..., auth=...)`."""
        return (self.admin, self.secret)


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports that nothing listens on right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


class _QuietHandler(WSGIRequestHandler):
    """No request lines on stderr: the nodes keep their own journal and statistics."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Drop werkzeug's own log lines."""


def _sessions_in(app: Any) -> Iterable[requests.Session]:
    """The outbound HTTP sessions an app keeps (its upstream, its replication follower, ...)."""
    for ext in app.extensions.values():
        for candidate in (ext, getattr(ext, "session", None)):
            if isinstance(candidate, requests.Session):
                yield candidate


class EmulatedHierarchy:
    """The whole hierarchy for a test run, with demo data or your own seed file."""

    def __init__(
        self,
        mode: Mode = "inprocess",
        data_dir: Path | str | None = None,
        *,
        topology: Topology | None = None,
        seed: Literal["demo", "none"] = "demo",
        seed_number: int = 2024,
        seed_file: Path | str | None = None,
        store: Literal["sqlite", "redis"] = "sqlite",
        redis_url: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
        if data_dir is None:
            import tempfile

            data_dir = tempfile.mkdtemp(prefix="idr-")
        self.mode = mode
        self.data_dir = Path(data_dir)
        self.seed = seed
        self.seed_number = seed_number
        self.seed_file = Path(seed_file) if seed_file else None
        self.store = store
        self.redis_url = redis_url
        self.topology = self._placed(topology or load_topology())
        self.session = requests.Session()
        self.apps: dict[str, Any] = {}
        self._servers: list[tuple[BaseWSGIServer, threading.Thread]] = []
        self._processes: Hierarchy | None = None
        self._resolver: Resolver | None = None
        self.description: dict[str, Any] = self._launcher().describe()
        self.nodes = {n["name"]: NodeInfo(**_node_fields(n)) for n in self.description["nodes"]}

    # -- what runs ------------------------------------------------------------------------

    def _placed(self, topology: Topology) -> Topology:
        if self.mode == "wsgi":
            # Unresolvable names (RFC 2606): a request that misses the session fails loudly
            # instead of reaching whatever listens on a real port.
            nodes = [n.model_copy(update={"host": f"{n.name}.idr.invalid"}) for n in topology.nodes]
            return Topology(nodes=nodes)
        ports = free_ports(len(topology.nodes))
        nodes = [
            n.model_copy(update={"host": "127.0.0.1", "port": port})
            for n, port in zip(topology.nodes, ports, strict=True)
        ]
        return Topology(nodes=nodes)

    def _launcher(self) -> Hierarchy:
        return Hierarchy(
            topology=self.topology,
            data_dir=self.data_dir,
            store=self.store,
            redis_url=self.redis_url,
            seed=self.seed,
            seed_number=self.seed_number,
        )

    @property
    def top_level(self) -> list[str]:
        """URLs of the top-level nodes, primary first."""
        return [n.url for n in self.topology.top_level]

    @property
    def enterprises(self) -> list[dict[str, Any]]:
        """Demo enterprises: prefix, node, names, admin identity and secret."""
        return list(self.description["enterprises"])

    @property
    def samples(self) -> dict[str, Any]:
        """Demo identifiers: `product` (a wardrobe whose trace spans four nodes), `identifiers`."""
        return dict(self.description["samples"])

    def url(self, node: str) -> str:
        """A node's base URL by name."""
        return self.node(node).url

    def node(self, name: str) -> NodeInfo:
        """A node by name."""
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r}: the hierarchy has {', '.join(self.nodes)}") from None

    def credentials(self, owner: str) -> tuple[str, str]:
        """(identity, secret) of a node by name, or of an enterprise or node prefix."""
        if owner in self.nodes:
            return self.nodes[owner].auth
        for ent in self.enterprises:
            if ent["prefix"].upper() == owner.upper():
                return (ent["admin"], ent["secret"])
        for info in self.nodes.values():
            if info.prefix.upper() == owner.upper():
                return info.auth
        raise KeyError(f"no credentials for {owner!r}: name a node, a node prefix or an enterprise")

    @property
    def resolver(self) -> Resolver:
        """A Resolver through the top-level nodes (primary first) that reaches this hierarchy."""
        if self._resolver is None:
            self._resolver = self.new_resolver()
        return self._resolver

    def new_resolver(self, **options: Any) -> Resolver:
        """A fresh Resolver (own cache) over this hierarchy's session; options as Resolver's."""
        return Resolver(self.top_level, session=self.session, **options)

    def fresh_resolver(self) -> Resolver:
        """Replace `resolver` with a new one (empty cache, closed breakers)."""
        self._resolver = self.new_resolver()
        return self._resolver

    def emulator(self, node: str) -> EmulatorClient:
        """The emulator controls (faults, journal, reset) of one node."""
        # Generous: a reset re-seeds (scrypt-hashed secrets), slow on a busy machine.
        return EmulatorClient(self.url(node), timeout=CONTROL_TIMEOUT, session=self.session)

    # -- faults and state -----------------------------------------------------------------

    def add_faults(self, node: str, rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add fault rules (the fields of PUT /_emulator/faults) on a node, or '*' for all."""
        names = list(self.nodes) if node == "*" else [self.node(node).name]
        added: list[dict[str, Any]] = []
        for name in names:
            added.extend(self.emulator(name).add_faults(list(rules)))
        return added

    def clear_faults(self) -> None:
        """Remove every fault rule on every node."""
        for name in self.nodes:
            self.emulator(name).clear_faults()

    def reset(self) -> None:
        """Restore every node's seeded data (and your seed file); clear faults and caches."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda name: self.emulator(name).reset(), self.nodes))
        self.load_seed_file()
        self.fresh_resolver()

    # -- start and stop -------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> EmulatedHierarchy:
        """Start every node, wait until each is ready, load the seed file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.mode == "processes":
                self._processes = self._launcher()
                self._processes.start(timeout=timeout)
            else:
                self._build_apps()
            self.load_seed_file()
        except BaseException:
            self.stop()
            raise
        return self

    def _build_apps(self) -> None:
        # The only place clients/ reaches into the node packages: to host them in-process.
        from resolver import replication_api
        from resolver.app import create_app as top_level_app
        from secondary_nodes.app import create_app as secondary_app

        topo_path = self.data_dir / "topology.json"
        topo_path.write_text(self.topology.dumps(), "utf-8")

        def build(spec: NodeSpec) -> Any:
            settings = NodeSettings(
                node=spec.name,
                topology=topo_path,
                data_dir=self.data_dir,
                store=self.store,
                redis_url=self.redis_url,
                seed=self.seed,
                seed_number=self.seed_number,
                access_log=False,
                # The backup's long poll at the primary: short, so stopping is quick.
                replication_wait=1.0,
            )
            return (top_level_app if spec.is_top_level else secondary_app)(settings)

        # One after the other: werkzeug compiles each route with the ast module, and on
        # CPython 3.11 concurrent ast use from threads can fail with "AST constructor
        # recursion depth mismatch" (seen in CI when apps were built in a thread pool).
        built = [build(spec) for spec in self.topology.nodes]
        self.apps = {spec.url: app for spec, app in zip(self.topology.nodes, built, strict=True)}
        if self.mode == "wsgi":
            mount_apps(self.session, self.apps)
            for app in self.apps.values():
                for session in _sessions_in(app):
                    mount_apps(session, self.apps)
        else:
            self._serve()
        # As the node entry points do: the backup follows the primary's change feed.
        for spec in self.topology.top_level:
            replication_api.start(self.apps[spec.url])

    def _serve(self) -> None:
        for spec in self.topology.nodes:
            server = make_server(
                spec.host,
                spec.port,
                self.apps[spec.url],
                threaded=True,
                request_handler=_QuietHandler,
            )
            thread = threading.Thread(
                target=server.serve_forever, args=(0.1,), name=f"idr-{spec.name}", daemon=True
            )
            thread.start()
            self._servers.append((server, thread))

    def load_seed_file(self) -> int:
        """Write the seed file's records through the REST API; the number written."""
        if self.seed_file is None:
            return 0
        records = read_seed_file(self.seed_file)
        for handle, values in records:
            node = self.home_of(handle)
            resp = self.session.put(
                f"{node.url}/api/handles/{handle}",
                json={"values": values},
                auth=node.auth,
                timeout=10,
            )
            if resp.status_code not in (200, 201):
                raise SeedFileError(
                    f"{self.seed_file}: {handle} was refused by {node.name} "
                    f"(HTTP {resp.status_code}): {resp.text[:300]}"
                )
        return len(records)

    def home_of(self, identifier: str) -> NodeInfo:
        """The node that holds an identifier: the secondary node of its prefix, else top-level."""
        prefix = parse_handle(identifier).homed_prefix
        homes = [
            n for n in self.nodes.values() if n.role == "secondary" and is_within(prefix, n.prefix)
        ]
        if homes:
            return max(homes, key=lambda n: len(n.prefix))
        tops = [n for n in self.nodes.values() if n.role == "primary"]
        if tops and is_within(prefix, tops[0].prefix):
            return tops[0]
        raise SeedFileError(f"no node of this hierarchy holds prefix {prefix!r} ({identifier})")

    def stop(self) -> None:
        """Stop every node and release the sessions."""
        if self._resolver is not None:
            self._resolver.close()
            self._resolver = None
        # Followers first (while their primary still answers), all at once: each finishes
        # the long poll it has in flight.
        followers = [a.extensions[FOLLOWER] for a in self.apps.values() if FOLLOWER in a.extensions]
        self._all(lambda follower: follower.stop(), followers)
        # shutdown() waits for a serving loop's next poll: stop them all at once too.
        self._all(lambda server: server.shutdown(), [server for server, _ in self._servers])
        for server, thread in self._servers:
            server.server_close()
            thread.join(5)
        self._servers.clear()
        if self._processes is not None:
            self._processes.stop()
            self._processes = None
        for app in self.apps.values():
            service = app.extensions.get("idr.records")
            if service is not None:
                service.store.close()
        self.apps.clear()
        self.session.close()

    @staticmethod
    def _all(step: Callable[[Any], object], items: list[Any]) -> None:
        if items:
            with ThreadPoolExecutor(max_workers=len(items)) as pool:
                list(pool.map(step, items))

    def __enter__(self) -> EmulatedHierarchy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _node_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: str(entry[f.name] or "") for f in fields(NodeInfo)}


def read_seed_file(path: Path) -> list[tuple[str, list[Any]]]:
    """(handle, values) pairs from a JSON seed file: `{"records": [{"handle", "values"}]}`."""
    try:
        body = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise SeedFileError(f"seed file {path} does not exist") from None
    except ValueError as exc:
        raise SeedFileError(f"seed file {path} is not valid JSON: {exc}") from None
    items = body.get("records") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise SeedFileError(f'seed file {path} must be {{"records": [...]}} or a JSON array')
    out: list[tuple[str, list[Any]]] = []
    for position, item in enumerate(items, start=1):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("handle"), str)
            or not isinstance(item.get("values"), list)
        ):
            raise SeedFileError(
                f'seed file {path}, record #{position}: needs "handle" (a string) and '
                f'"values" (a list of Handle values)'
            )
        out.append((item["handle"], item["values"]))
    return out
