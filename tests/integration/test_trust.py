"""Trusted resolution in-process: every write signed, the chain checked from the pinned key.

The hierarchy runs in-process (the top-level node recursing into secondary nodes over
WSGI); a client Resolver is mounted on the same apps. Stores are edited behind the nodes'
backs (SQLite with its own connection, Redis with its own client) to show that what was
not written through the API is caught.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import redis
import requests

from clients.commands import keys as keys_command
from clients.resolver import Resolver
from clients.trace_result import trace_schema
from clients.transport import mount_apps
from clients.trust import (
    ANCHOR_MISMATCH,
    BAD_SIGNATURE,
    DIGEST_MISMATCH,
    NO_SIGNATURE,
    NOT_DELEGATED,
    WRONG_HANDLE,
    Anchor,
    AnchorChanged,
    Verdict,
    Verifier,
    anchor_from_record,
)
from idcore.identifier import fold
from idcore.keys import KeyRing
from idcore.record_codec import decode, encode
from idcore.redis_store import RedisStore
from idcore.settings import NodeSettings
from idcore.signing import SIGNATURE_TYPE, Signer, parse_signature, with_pubkeys
from idcore.sqlite_store import SQLiteStore
from idcore.store import Record
from idcore.trust_api import TRUST, NodeTrust
from resolver.app import create_app as create_top
from tests.integration.conftest import (
    NODE_ADMIN,
    PRODUCT,
    SECONDARIES,
    STORES,
    TOP,
    TOP_ADMIN,
    FakeClock,
    Hierarchy,
    LazyNodes,
    Node,
    basic,
    expect,
)

TOP_URL = "http://127.0.0.1:8000"
TIMBER_ADMIN = ("300:88.169/ADMIN", "demo-timber-admin")
TOPOLOGY = NodeSettings(node=TOP).load_topology()


@pytest.fixture
def chain(make_node: Any, store_kind: str) -> Hierarchy:
    """The hierarchy with its secondary nodes on `store_kind` (the top on SQLite)."""
    top: Node = make_node(TOP)
    nodes = LazyNodes(SECONDARIES, lambda name: make_node(name, store_kind))
    mount_apps(
        top.app.extensions["idr.upstream"].session,
        {TOPOLOGY.node(n).url: nodes.wsgi(n) for n in SECONDARIES},
    )
    return Hierarchy(top, nodes, FakeClock())


def anchor_of(top: Node, pinned: Anchor | None = None) -> Anchor:
    """What `idr trust fetch` pins: the anchor record checked (against `pinned`)."""
    body = expect(top.get("/api/trust/anchor"), 200, 1)
    return anchor_from_record(body["prefix"], body["values"], pinned, TOP_URL)


@pytest.fixture
def client(chain: Hierarchy) -> Iterator[Resolver]:
    """A verifying Resolver through the in-process top-level node, its anchor pinned."""
    resolver = Resolver(TOP_URL, verify=True)
    mount_apps(resolver.session, {TOP_URL: chain.top.app})
    resolver.verifier = Verifier.for_resolver(resolver, anchor_of(chain.top))
    yield resolver
    resolver.close()


def trust(client: Resolver, handle: str) -> Verdict:
    """The verdict on a record fetched fresh (past every cache)."""
    verdict = client.resolve(handle, fresh=True).trust
    assert verdict is not None
    return verdict


def signer_kid(node: Node, handle: str) -> str:
    """The key id of the signature a node stored on a record."""
    record = node.store.get(fold(handle))
    assert record is not None
    signature = next(v for v in record.values if v["type"] == SIGNATURE_TYPE)
    return parse_signature(signature).kid


def node_trust(node: Node) -> NodeTrust:
    found: NodeTrust = node.app.extensions[TRUST]
    return found


# -- every write is signed -------------------------------------------------------------------


@STORES
def test_every_way_of_writing_leaves_a_trusted_record(chain: Hierarchy, client: Resolver) -> None:
    furniture = chain.secondaries["furniture"]
    kid = node_trust(furniture).signer.ring.current.kid
    url = {"index": 1, "type": "URL", "data": "https://example.test/desk"}
    desc = {"index": 2, "type": "DESC", "data": "a desk"}
    written = {
        "seeded": PRODUCT,
        "put": "88.168.1/TRUST-PUT",
        "partial": "88.168.1/TRUST-PARTIAL",
        "value delete": "88.168.1/TRUST-DELETE",
        "batch": "88.168.1/TRUST-BATCH",
        "template": "88.168/TEMPLATE.trust.desk@1",
        "enterprise": "0.NA/88.168.9",
        "enterprise admin": "88.168.9/ADMIN",
    }
    expect(furniture.put(written["put"], {"values": [url]}), 201, 1)
    expect(furniture.put(written["partial"], {"values": [url]}), 201, 1)
    expect(furniture.put(written["partial"], {"values": [desc]}, query="?index=2"), 200, 1)
    expect(furniture.put(written["value delete"], {"values": [url, desc]}), 201, 1)
    expect(furniture.delete(written["value delete"], query="?index=2"), 200, 1)
    batch = {"handles": [{"handle": written["batch"], "values": [url]}]}
    body = expect(furniture.call("POST", "/api/batch/handles", json=batch, headers=_auth()), 200, 1)
    assert body["succeeded"] == 1, body
    template = {
        "title_zh": "书桌",
        "title_en": "Desk",
        "stage": "product",
        "items": [{"code": "name", "name_zh": "名称", "name_en": "Name", "required": True}],
    }
    resp = furniture.call("PUT", "/api/templates/trust.desk@1", json=template, headers=_auth())
    expect(resp, 201, 1)
    enterprise = {"prefix": "88.168.9", "name": "信任演示", "secret": "a-long-demo-secret"}
    expect(furniture.call("POST", "/api/enterprises", json=enterprise, headers=_auth()), 201, 1)

    for how, handle in written.items():
        verdict = trust(client, handle)
        assert verdict.trusted, (how, verdict)
        assert (verdict.issuer, verdict.prefix, verdict.kid) == ("furniture", "88.168", kid)
    # The top-level node signs its delegations; its own record is the anchor.
    for handle in ("0.NA/88.168", "0.NA/88"):
        verdict = trust(client, handle)
        assert verdict.trusted and verdict.issuer == TOP and verdict.prefix == "88", verdict


def _auth() -> dict[str, str]:
    return {"Authorization": basic(NODE_ADMIN)}


def test_a_client_that_sends_a_signature_back_gets_a_fresh_one(
    chain: Hierarchy, client: Resolver
) -> None:
    """pyhandle-style read-modify-write sends the old HS_SIGNATURE: it is replaced."""
    furniture = chain.secondaries["furniture"]
    values = expect(furniture.get(PRODUCT), 200, 1)["values"]
    values = [
        v if v["index"] != 1 else {**v, "data": {"format": "string", "value": "u"}} for v in values
    ]
    expect(furniture.put(PRODUCT, {"values": values}, auth=NODE_ADMIN), 200, 1)
    assert trust(client, PRODUCT).trusted
    reserved = {"values": [{"index": 400, "type": "URL", "data": "https://x.test"}]}
    expect(furniture.put("88.168.1/AT-400", reserved), 400, 202, "reserved")


def test_resolve_filters_keep_the_verdict_of_the_whole_record(client: Resolver) -> None:
    record = client.resolve(PRODUCT, types=["URL"], fresh=True)
    assert [v["type"] for v in record.values] == ["URL"]
    assert record.trust is not None and record.trust.trusted


# -- tampering -------------------------------------------------------------------------------


def edit_stored(node: Node, handle: str, change: Any) -> None:
    """Rewrite a record in the node's store with the back end's own client, not the API."""
    key = fold(handle)
    store = node.store
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            (body,) = conn.execute("SELECT body FROM records WHERE key = ?", (key,)).fetchone()
            raw = json.loads(body)
            change(raw["v"])
            conn.execute("UPDATE records SET body = ? WHERE key = ?", (json.dumps(raw), key))
        conn.close()
        return
    assert isinstance(store, RedisStore)
    raw_client: redis.Redis = store._redis  # plain GET / SET, as redis-cli would
    name = f"idr:{{{store.namespace}:{key.split('/', 1)[0]}}}:r:{key}"  # redis_store layout
    blob = cast("str", raw_client.get(name) or "")  # the store's client decodes replies
    record = decode(blob.encode("utf-8", "surrogateescape"))
    change(record.values)
    raw_client.set(name, encode(record))


def _set_data(index: int, text: str) -> Any:
    def change(values: list[dict[str, Any]]) -> None:
        value = next(v for v in values if v["index"] == index)
        value["data"] = {"format": "string", "value": text}

    return change


@STORES
def test_a_record_edited_in_the_store_is_untrusted_everywhere(
    chain: Hierarchy, client: Resolver
) -> None:
    furniture = chain.secondaries["furniture"]
    item = "88.168.1/STEP-2024-0512-02-EDGE"
    assert trust(client, item).trusted
    edit_stored(furniture, item, _set_data(2000, "tampered in the store"))
    verdict = trust(client, item)
    assert (verdict.status, verdict.reason) == ("untrusted", DIGEST_MISMATCH), verdict
    assert "value 2000" in (verdict.detail or "")

    # The top-level node's trace and consumer page say so too (its cache emptied first).
    chain.upstream.cache.clear()
    body = chain.top.client.get(f"/api/trace/{PRODUCT}").get_json()
    jsonschema.validate(body, trace_schema())
    marks = {r["handle"]: r["trust"] for r in body["records"]}
    assert marks[item]["status"] == "untrusted" and marks[item]["reason"] == DIGEST_MISMATCH
    assert marks[PRODUCT]["status"] == "trusted"
    assert body["trust"]["verdict"] == "untrusted" and body["trust"]["untrusted"] == 1
    page = chain.top.client.get(f"/t/{PRODUCT}?lang=en").get_data(as_text=True)
    assert "UNTRUSTED: signature check failed · data differs from what was signed" in page
    assert "Signatures: " in page and "1 untrusted" in page


@STORES
def test_a_forged_or_removed_signature_is_caught(chain: Hierarchy, client: Resolver) -> None:
    furniture = chain.secondaries["furniture"]
    item = "88.168.1/STEP-2024-0512-03-DRILL"

    def corrupt(values: list[dict[str, Any]]) -> None:
        signature = next(v for v in values if v["type"] == SIGNATURE_TYPE)
        head, body, sig = signature["data"]["value"].split(".")
        flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
        signature["data"]["value"] = f"{head}.{body}.{flipped}"

    # Verified once first: a remembered good signature must not vouch for a forged one.
    assert trust(client, item).trusted
    chain.upstream.cache.clear()
    before = chain.top.client.get(f"/api/trace/{PRODUCT}").get_json()
    assert {r["handle"]: r["trust"] for r in before["records"]}[item]["status"] == "trusted"
    edit_stored(furniture, item, corrupt)
    verdict = trust(client, item)
    assert (verdict.status, verdict.reason) == ("untrusted", BAD_SIGNATURE), verdict
    chain.upstream.cache.clear()
    after = chain.top.client.get(f"/api/trace/{PRODUCT}").get_json()
    assert {r["handle"]: r["trust"] for r in after["records"]}[item]["reason"] == BAD_SIGNATURE

    def unsign(values: list[dict[str, Any]]) -> None:
        values[:] = [v for v in values if v["type"] != SIGNATURE_TYPE]

    edit_stored(furniture, item, unsign)
    verdict = trust(client, item)
    assert (verdict.status, verdict.reason) == ("unknown", NO_SIGNATURE), verdict


def test_a_signature_copied_to_another_handle_is_caught(chain: Hierarchy, client: Resolver) -> None:
    furniture = chain.secondaries["furniture"]
    original = furniture.store.get(fold(PRODUCT))
    assert original is not None
    furniture.store.put_many([Record("88.168.1/COPY-OF-WARD", original.values)])
    verdict = trust(client, "88.168.1/COPY-OF-WARD")
    assert (verdict.status, verdict.reason) == ("untrusted", WRONG_HANDLE), verdict


# -- delegation ------------------------------------------------------------------------------


def test_a_secondary_nodes_key_cannot_sign_under_another_prefix(
    chain: Hierarchy, client: Resolver, keys_dir: Path
) -> None:
    furniture = chain.secondaries["furniture"]
    timber = node_trust(chain.secondaries["timber"]).signer
    record = Record(
        "88.168.1/FORGED",
        [{"index": 1, "type": "URL", "data": {"format": "string", "value": "https://evil.test"}}],
    )
    # As timber signs: its key speaks for 88.169, not for 88.168.
    furniture.store.put_many([timber(record)])
    verdict = trust(client, "88.168.1/FORGED")
    assert (verdict.status, verdict.reason) == ("untrusted", NOT_DELEGATED), verdict
    assert "speaks for 88.169" in (verdict.detail or "")
    # Claiming 88.168 with timber's key: 0.NA/88.168 does not delegate that key.
    posing = Signer(keys_dir, "timber", issuer="furniture", prefix="88.168")
    furniture.store.put_many([posing(record)])
    verdict = trust(client, "88.168.1/FORGED")
    assert (verdict.status, verdict.reason) == ("untrusted", NOT_DELEGATED), verdict
    assert timber.ring.current.kid in (verdict.detail or "")


def test_an_unsigned_record_is_unknown(chain: Hierarchy, client: Resolver) -> None:
    value = {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://x.test"}}
    chain.secondaries["furniture"].store.put_many([Record("88.168.1/UNSIGNED", [value])])
    verdict = trust(client, "88.168.1/UNSIGNED")
    assert (verdict.status, verdict.reason) == ("unknown", NO_SIGNATURE)


def test_without_a_pinned_anchor_nothing_is_trusted(chain: Hierarchy) -> None:
    resolver = Resolver(TOP_URL)
    mount_apps(resolver.session, {TOP_URL: chain.top.app})
    resolver.verifier = Verifier.for_resolver(resolver, None)
    verdict = resolver.resolve(PRODUCT).trust
    assert verdict is not None and verdict.status == "unknown", verdict
    resolver.close()


# -- the anchor ------------------------------------------------------------------------------


def test_a_swapped_anchor_key_is_refused(
    chain: Hierarchy, client: Resolver, tmp_path: Path
) -> None:
    real = anchor_of(chain.top)
    # Another top-level key, presented with a record signed by it: not vouched for.
    impostor = Signer(tmp_path, "cq-top", issuer=TOP, prefix="88", anchor_handle="0.NA/88")
    body = expect(chain.top.get("/api/trust/anchor"), 200, 1)
    swapped = impostor(Record("0.NA/88", with_pubkeys(body["values"], impostor.ring.public_jwks())))
    with pytest.raises(AnchorChanged, match="no pinned key"):
        anchor_from_record("88", swapped.values, real)
    assert anchor_from_record("88", swapped.values, None).current_kid == impostor.ring.current.kid
    # A client pinned to the impostor trusts nothing the real hierarchy signs.
    fake = anchor_from_record("88", swapped.values, None)
    assert client.verifier is not None
    client.verifier.anchor = fake
    client.verifier.forget()
    verdict = trust(client, PRODUCT)
    assert (verdict.status, verdict.reason) == ("untrusted", ANCHOR_MISMATCH), verdict


# -- rotation --------------------------------------------------------------------------------


@pytest.fixture
def own_keys(make_node: Any, keys_dir: Path, tmp_path: Path) -> Iterator[Hierarchy]:
    """The hierarchy on a private copy of the session's keys (rotation changes them)."""
    private = tmp_path / "keys"
    shutil.copytree(keys_dir, private)
    top: Node = make_node(TOP, keys_dir=private)
    nodes = LazyNodes(SECONDARIES, lambda name: make_node(name, keys_dir=private))
    mount_apps(
        top.app.extensions["idr.upstream"].session,
        {TOPOLOGY.node(n).url: nodes.wsgi(n) for n in SECONDARIES},
    )
    yield Hierarchy(top, nodes, FakeClock())


def test_rotation_keeps_records_signed_by_the_old_key_verifiable(
    own_keys: Hierarchy, monkeypatch: pytest.MonkeyPatch
) -> None:
    top, timber = own_keys.top, own_keys.secondaries["timber"]
    resolver = Resolver(TOP_URL)
    mount_apps(resolver.session, {TOP_URL: top.app})
    pin = anchor_of(top)
    resolver.verifier = Verifier.for_resolver(resolver, pin)
    old_record = "88.169.1/BOARD-LOT-2024-0305"
    old_kid = signer_kid(timber, old_record)

    rotated = expect(timber.call("POST", "/_emulator/keys/rotate"), 200, 1)
    assert rotated["retired"] == [old_kid] and rotated["kid"] != old_kid
    value = {"index": 1, "type": "URL", "data": "https://example.test/new-lot"}
    expect(timber.put("88.169.1/NEW-LOT", {"values": [value]}, auth=TIMBER_ADMIN), 201, 1)
    assert signer_kid(timber, "88.169.1/NEW-LOT") == rotated["kid"]
    # Not registered at the top yet: the new key is not delegated.
    verdict = resolver.resolve("88.169.1/NEW-LOT", fresh=True).trust
    assert verdict is not None and verdict.reason == NOT_DELEGATED, verdict

    # `idr keys rotate` registers it as the top-level admin (here over WSGI).
    session = requests.Session()
    mount_apps(session, {TOP_URL: top.app})
    monkeypatch.setattr(keys_command, "new_session", lambda: session)
    entry = {"url": TOP_URL, "admin": TOP_ADMIN[0], "secret": TOP_ADMIN[1]}
    indexes = keys_command.register_keys(entry, "88.169", rotated["keys"], 5.0)
    assert indexes == [300, 301]
    for handle in ("88.169.1/NEW-LOT", old_record):
        verdict = resolver.resolve(handle, fresh=True).trust
        assert verdict is not None and verdict.trusted, (handle, verdict)
    assert signer_kid(timber, old_record) == old_kid  # trusted, and still under the old key

    # The top-level key rolls over: a client pinned to the old key accepts the new one.
    rolled = expect(top.call("POST", "/_emulator/keys/rotate"), 200, 1)
    new_pin = anchor_of(top, pin)
    assert new_pin.current_kid == rolled["kid"] and pin.current_kid in new_pin.public_keys
    resolver.verifier = Verifier.for_resolver(resolver, new_pin)
    for handle in ("0.NA/88.169", "0.NA/88", old_record):
        verdict = resolver.resolve(handle, fresh=True).trust
        assert verdict is not None and verdict.trusted, (handle, verdict)
    resolver.close()
    session.close()
    ring = node_trust(top).signer.ring
    assert KeyRing.open(ring.directory.parent, TOP).kids() == [rolled["kid"], pin.current_kid]


def test_a_backup_serves_the_primarys_anchor_and_refuses_to_rotate(
    make_node: Any, keys_dir: Path, data_dir: Path
) -> None:
    settings = NodeSettings(node="cd-backup", data_dir=data_dir, keys_dir=keys_dir)
    backup = Node("cd-backup", create_top(settings), SQLiteStore(data_dir / "unused.sqlite3"))
    primary: Node = make_node(TOP)
    assert anchor_of(backup).current_kid == anchor_of(primary).current_kid
    assert expect(backup.get("/api/trust/keys"), 200, 1)["owner"] == TOP
    expect(backup.call("POST", "/_emulator/keys/rotate", allow_5xx=True), 503, 7, "backup")
    assert KeyRing.open(keys_dir, TOP).current.kid == anchor_of(primary).current_kid
    backup.store.close()
