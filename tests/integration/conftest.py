"""Nodes in-process: a secondary node on SQLite or Redis, and the whole hierarchy.

Seeding hashes every demo secret with scrypt (tens of ms each), so each node is
seeded once per session through its real `create_app` and the seeded records are
copied into each test's fresh store; `create_app` then finds its seed mark and
skips seeding, exactly as on a restart.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from clients.transport import mount_apps
from idcore.credentials import SecretVerifier
from idcore.identifier import fold
from idcore.record_codec import decode
from idcore.redis_store import RedisStore
from idcore.settings import NodeSettings
from idcore.sqlite_store import SQLiteStore
from idcore.store import Record, Store
from resolver.app import create_app as create_top
from resolver.upstream import Upstream
from secondary_nodes.app import create_app as create_secondary

TOP = "cq-top"
SECONDARIES = ("furniture", "timber", "materials", "inspection", "power", "auto")

# Demo credentials (idcore/demo.py, idcore/settings.py).
ENTERPRISE_1 = ("300:88.168.1/ADMIN", "demo-88.168.1-secret")
ENTERPRISE_2 = ("300:88.168.2/ADMIN", "demo-88.168.2-secret")
TIMBER_ENTERPRISE = ("300:88.169.1/ADMIN", "demo-88.169.1-secret")
NODE_ADMIN = ("300:88.168/ADMIN", "demo-furniture-admin")
TOP_ADMIN = ("300:0.NA/88", "demo-cq-top-admin")
PRODUCT = "88.168.1/WARD-2024-000123"

STORES = pytest.mark.parametrize(
    "store_kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]
)
"""Apply to a test (or module) to run it on both store back ends."""


def basic(identity: tuple[str, str]) -> str:
    """`Authorization` as pyhandle sends it: user `300%3A<handle>`, then the secret."""
    user, secret = identity
    token = base64.b64encode(f"{user.replace(':', '%3A', 1)}:{secret}".encode()).decode()
    return f"Basic {token}"


# --- store dumps ----------------------------------------------------------------------


def dump_store(store: Store) -> dict[str, Any]:
    """Everything a back end holds for a node: records (and, on Redis, prefix indexes)."""
    if isinstance(store, SQLiteStore):
        rows = store._conn().execute("SELECT key, prefix, handle, body FROM records").fetchall()
        return {"records": {k: (p, h, b) for k, p, h, b in rows}}
    if isinstance(store, RedisStore):
        client = store._redis
        out: dict[str, Any] = {"records": {}, "indexes": {}}
        for name in client.scan_iter(match=f"idr:{{{store.namespace}:*", count=1000):
            if name.endswith(":idx"):
                out["indexes"][name] = client.zrange(name, 0, -1)
            elif ":r:" in name:
                # A compact blob (idcore/record_codec.py), as the record's JSON.
                text = cast("str", client.get(name))  # the store's client decodes replies
                blob = text.encode("utf-8", "surrogateescape")
                out["records"][name] = decode(blob).dumps()
        return out
    raise TypeError(f"no dump for {type(store).__name__}")


def stored(store: Store, handle: str) -> Record | None:
    """The record as the back end holds it (secrets hashed, nothing hidden)."""
    return store.get(fold(handle))


# --- nodes ------------------------------------------------------------------------


@dataclass
class Node:
    """One node app in-process, with its store and a JSON-checking client."""

    name: str
    app: Flask
    store: Store
    client: FlaskClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def call(self, method: str, path: str, *, allow_5xx: bool = False, **kw: Any) -> TestResponse:
        """Any request; every answer must be Handle JSON, never HTML, never a 500."""
        resp = self.client.open(path, method=method, **kw)
        assert resp.mimetype == "application/json", (resp.status_code, resp.data[:200])
        body = json.loads(resp.get_data(as_text=True))
        assert isinstance(body, dict)
        if not allow_5xx:
            assert resp.status_code < 500, body
        if resp.status_code >= 400:
            assert isinstance(body.get("message"), str) and body["message"], body
            assert isinstance(body.get("responseCode"), int), body
        return resp

    def get(self, path: str, **kw: Any) -> TestResponse:
        """GET `/api/handles/<path>` (or any absolute path)."""
        return self.call("GET", _url(path), **kw)

    def put(
        self,
        path: str,
        body: Any,
        *,
        auth: tuple[str, str] | None = ENTERPRISE_1,
        query: str = "",
        **kw: Any,
    ) -> TestResponse:
        """PUT a JSON body with (by default) the 88.168.1 enterprise admin's credentials."""
        headers = dict(kw.pop("headers", {}))
        if auth is not None:
            headers["Authorization"] = basic(auth)
        if "data" not in kw:
            kw["data"] = json.dumps(body)
            kw.setdefault("content_type", "application/json")
        return self.call("PUT", _url(path) + query, headers=headers, **kw)

    def delete(
        self, path: str, *, auth: tuple[str, str] | None = ENTERPRISE_1, query: str = ""
    ) -> TestResponse:
        """DELETE with (by default) the 88.168.1 enterprise admin's credentials."""
        headers = {"Authorization": basic(auth)} if auth else {}
        return self.call("DELETE", _url(path) + query, headers=headers)

    def dump(self) -> dict[str, Any]:
        """The store's whole content, to compare before and after a refused write."""
        return dump_store(self.store)

    def values(self, handle: str, **kw: Any) -> dict[int, dict[str, Any]]:
        """The public values of a record, by index (asserts it resolves).

        The node's HS_SIGNATURE, made anew by every write, is left out (and checked by
        tests/integration/test_trust.py).
        """
        resp = self.get(handle, **kw)
        assert resp.status_code == 200, resp.get_json()
        return {v["index"]: v for v in resp.get_json()["values"] if v["type"] != "HS_SIGNATURE"}


def _url(path: str) -> str:
    return path if path.startswith("/") else f"/api/handles/{path}"


# --- seeding once per session ----------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """What a node's first start wrote: its records and its meta (seed mark)."""

    records: list[Record]
    meta: dict[str, str]

    def into(self, store: Store) -> Store:
        store.put_many(self.records)
        for name, value in self.meta.items():
            store.set_meta(name, value)
        return store


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every node's signing keys for the session: the seeded records are signed with them."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> dict[str, Seed]:
    """Each node of the default topology started once on SQLite; its seed, by node name."""
    base = tmp_path_factory.mktemp("seeds")
    out: dict[str, Seed] = {}
    for name in (TOP, *SECONDARIES):
        settings = NodeSettings(node=name, data_dir=base, keys_dir=keys_dir)
        app = create_top(settings) if name == TOP else create_secondary(settings)
        app.extensions["idr.records"].store.close()
        with sqlite3.connect(base / f"{name}.sqlite3") as conn:
            records = [Record.loads(b) for (b,) in conn.execute("SELECT body FROM records")]
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        conn.close()
        assert records and meta
        out[name] = Seed(records, meta)
    return out


@pytest.fixture
def store_kind() -> str:
    """The back end of the `secondary` fixture: SQLite unless a test parametrizes it."""
    return "sqlite"


@pytest.fixture(scope="session")
def verifier() -> SecretVerifier:
    """One secret verifier for every node of the session.

    scrypt makes each first check of a secret cost tens of milliseconds; a real
    node process keeps its verifier across requests, and the seeded hashes are the
    same in every test, so sharing it keeps the suite fast without skipping a check
    (the verifier remembers only successes, keyed by the stored hash).
    """
    return SecretVerifier()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A per-test directory for SQLite files: in RAM (/dev/shm) when there is one.

    The SQLite store fsyncs every commit (synchronous=FULL); on a disk that costs
    tens of milliseconds per test, on tmpfs nothing. Behaviour is the same.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="idr-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_node(
    seeds: dict[str, Seed],
    verifier: SecretVerifier,
    data_dir: Path,
    keys_dir: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """Build node `name` on a fresh store of `kind` holding its seed (and the seed's keys)."""
    opened: list[Store] = []

    def make(name: str, kind: str = "sqlite", **settings: Any) -> Node:
        store: Store
        if kind == "redis":
            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, namespace=f"{name}-{uuid.uuid4().hex[:8]}")
        else:
            store = SQLiteStore(data_dir / f"{name}.sqlite3")
        opened.append(store)
        seeds[name].into(store)
        settings.setdefault("keys_dir", keys_dir)
        node_settings = NodeSettings(node=name, data_dir=data_dir, **settings)
        app = (
            create_top(node_settings, store)
            if name == TOP
            else create_secondary(node_settings, store)
        )
        app.extensions["idr.records"]._verifier = verifier
        return Node(name, app, store)

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def secondary(make_node: Any, store_kind: str) -> Node:
    """The furniture secondary node (prefix 88.168) with the demo seed."""
    node: Node = make_node("furniture", store_kind)
    return node


class FakeClock:
    """A monotonic clock for the top-level node's cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LazyNodes(Mapping[str, Node]):
    """The secondary nodes by name, each built (on its seeded store) when first used.

    All six are mounted on the top-level node's session from the start; building
    a Flask app costs tens of milliseconds, and most tests touch one or two nodes.
    """

    def __init__(self, names: tuple[str, ...], make: Callable[[str], Node]) -> None:
        self._names = names
        self._make = make
        self._built: dict[str, Node] = {}
        # A trace fetches in threads: build each node once, and never two at a time
        # (werkzeug's route compiling uses the ast module, not thread-safe on 3.11).
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Node:
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            if name not in self._built:
                self._built[name] = self._make(name)
            return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def wsgi(self, name: str) -> Callable[..., Any]:
        """A WSGI app that is node `name`, built on its first request."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            return self[name].app(environ, start_response)

        return app


@dataclass
class Hierarchy:
    """cq-top and the six secondary nodes, the top recursing into them in-process."""

    top: Node
    secondaries: LazyNodes
    clock: FakeClock

    @property
    def upstream(self) -> Upstream:
        upstream: Upstream = self.top.app.extensions["idr.upstream"]
        return upstream

    def mount(self, base_url: str, app: Any) -> None:
        """Make another node reachable from the top-level node at `base_url`."""
        mount_apps(self.upstream.session, {base_url: app})


@pytest.fixture
def hierarchy(make_node: Any) -> Hierarchy:
    """The default topology in-process; the top's cache runs on a hand-moved clock."""
    top: Node = make_node(TOP)
    nodes = LazyNodes(SECONDARIES, make_node)
    clock = FakeClock()
    upstream: Upstream = top.app.extensions["idr.upstream"]
    # The app keeps references to its cache (e.g. for /_emulator/reset): move its clock.
    upstream.cache._clock = clock
    topology = NodeSettings(node=TOP).load_topology()
    mount_apps(upstream.session, {topology.node(n).url: nodes.wsgi(n) for n in SECONDARIES})
    return Hierarchy(top, nodes, clock)


# --- assertions -------------------------------------------------------------------------


def expect(resp: TestResponse, status: int, code: int, *words: str) -> dict[str, Any]:
    """Assert an answer's HTTP status, responseCode and message words; return its body."""
    body: dict[str, Any] = resp.get_json()
    assert (resp.status_code, body.get("responseCode")) == (status, code), body
    message = body.get("message", "")
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return body


@contextmanager
def unchanged(*nodes: Node) -> Iterator[None]:
    """Assert that the block leaves every node's stored data exactly as it was."""
    before = [node.dump() for node in nodes]
    yield
    assert [node.dump() for node in nodes] == before
