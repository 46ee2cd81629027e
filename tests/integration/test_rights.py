"""Who may write what: HS_ADMIN permission bits, the three kinds of admin, failed logins.

The demo hierarchy's admins: the top-level admin (300:0.NA/88) registers secondary
nodes on cq-top; a secondary node's admin (300:88.168/ADMIN) registers enterprises on
its node; an enterprise admin (300:88.168.1/ADMIN) writes under its own prefix only.
Every refused write leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from clients.cli import main as idr
from clients.commands import admin as admin_command
from clients.transport import mount_apps
from idcore.credentials import FailureThrottle
from idcore.records import RecordService
from idcore.store import Record
from secondary_nodes.enterprises import ENTERPRISE_ADMIN_PERMISSIONS
from tests.integration.conftest import (
    ENTERPRISE_1,
    ENTERPRISE_2,
    NODE_ADMIN,
    STORES,
    TIMBER_ENTERPRISE,
    TOP_ADMIN,
    FakeClock,
    Node,
    basic,
    expect,
    stored,
    unchanged,
)

URL = {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x/1"}}
EDITOR = ("300:88.168.1/EDITOR", "editor-secret-1")
DOC = "88.168.1/DOC-1"
VALUES_ONLY = "110001110000"  # list, read, add/remove/modify values; no admin bits


def _admin(index: int, handle: str, permissions: str = "111111111111") -> dict[str, Any]:
    return {
        "index": index,
        "type": "HS_ADMIN",
        "data": {
            "format": "admin",
            "value": {"handle": handle, "index": 300, "permissions": permissions},
        },
    }


def _string(index: int, vtype: str, text: str) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}}


@pytest.fixture
def node(make_node: Any, store_kind: str) -> Node:
    """The furniture node with an editor identity that may change DOC's values, not its admins."""
    furniture: Node = make_node("furniture", store_kind)
    editor = [
        {"index": 300, "type": "HS_SECKEY", "data": EDITOR[1]},
        _admin(100, "88.168.1/ADMIN"),
    ]
    expect(furniture.put("88.168.1/EDITOR", editor), 201, 1)
    doc = [URL, _string(2, "DESC", "d"), _admin(100, "88.168.1/ADMIN")]
    doc.append(_admin(101, "88.168.1/EDITOR", VALUES_ONLY))
    expect(furniture.put(DOC, doc), 201, 1)
    return furniture


# --- HS_ADMIN permission bits -----------------------------------------------------------


@STORES
def test_an_editor_changes_values_but_not_admins(node: Node) -> None:
    expect(node.put(DOC, [_string(1, "URL", "http://x/2")], auth=EDITOR, query="?index=1"), 200, 1)
    expect(node.put(DOC, [_string(3, "EMAIL", "a@b")], auth=EDITOR, query="?index=3"), 200, 1)
    expect(node.delete(DOC, auth=EDITOR, query="?index=3"), 200, 1)
    assert node.values(DOC)[1]["data"]["value"] == "http://x/2"


ADMIN_CHANGES = [
    ("add an HS_ADMIN", [_admin(102, "88.168.2/ADMIN")], "?index=102", "addAdmin"),
    ("modify an HS_ADMIN", [_admin(100, "88.168.1/EDITOR")], "?index=100", "modifyAdmin"),
    ("turn an HS_ADMIN into a value", [_string(100, "DESC", "x")], "?index=100", "modifyAdmin"),
    ("turn a value into an HS_ADMIN", [_admin(2, "88.168.1/EDITOR")], "?index=2", "modifyAdmin"),
]


@STORES
@pytest.mark.parametrize(("what", "body", "query", "right"), ADMIN_CHANGES)
def test_changing_admins_needs_the_admin_bits(
    node: Node, what: str, body: list[dict[str, Any]], query: str, right: str
) -> None:
    with unchanged(node):
        resp = node.put(DOC, body, auth=EDITOR, query=query)
    assert expect(resp, 403, 401, "300:88.168.1/EDITOR", right)["right"] == right, what


@STORES
def test_removing_an_admin_needs_remove_admin(node: Node) -> None:
    with unchanged(node):
        expect(node.delete(DOC, auth=EDITOR, query="?index=101"), 403, 401, "removeAdmin")
        expect(node.delete(DOC, auth=EDITOR, query="?index=2&index=100"), 403, 401, "removeAdmin")
        expect(node.delete(DOC, auth=EDITOR), 403, 401, "deleteHandle")


@STORES
def test_a_whole_replace_needs_a_right_per_kind_of_change(node: Node) -> None:
    current = {v["index"]: v for v in node.values(DOC).values()}
    admins = [current[100], current[101]]
    # Values change, the HS_ADMIN values come back unchanged: value rights suffice.
    expect(node.put(DOC, [_string(1, "URL", "http://x/3"), *admins], auth=EDITOR), 200, 1)
    with unchanged(node):
        # Dropping an HS_ADMIN value is removing an admin.
        expect(node.put(DOC, [URL, admins[0]], auth=EDITOR), 403, 401, "removeAdmin")
        # Changing one is modifying an admin.
        changed = {**admins[1], "data": _admin(101, "88.168.1/EDITOR")["data"]}
        expect(node.put(DOC, [URL, admins[0], changed], auth=EDITOR), 403, 401, "modifyAdmin")
    # The enterprise admin holds every bit.
    expect(node.put(DOC, [URL, admins[0]]), 200, 1)
    kept = [i for i, v in node.values(DOC).items() if v["type"] != "HS_SIGNATURE"]
    assert sorted(kept) == [1, 100]


@STORES
def test_a_batch_replace_needs_the_same_rights_as_a_put(node: Node) -> None:
    current = {v["index"]: v for v in node.values(DOC).values()}
    # Dropping the editor's own HS_ADMIN through the batch API is still removing an admin.
    body = {"handles": [{"handle": DOC, "values": [URL, current[100]]}], "overwrite": True}
    with unchanged(node):
        resp = node.call(
            "POST", "/api/batch/handles", json=body, headers={"Authorization": basic(EDITOR)}
        )
    assert resp.status_code == 200
    (item,) = resp.get_json()["results"]
    assert item["responseCode"] == 401 and "removeAdmin" in item["message"]


@STORES
def test_an_identity_without_add_admin_may_still_create_records_with_admins(node: Node) -> None:
    # Creating a record needs addHandle only (Handle System semantics): the HS_ADMIN of the
    # new record is part of it. The editor holds no right under the prefix, so it may not.
    with unchanged(node):
        expect(node.put("88.168.1/BY-EDITOR", [URL], auth=EDITOR), 403, 401, "addHandle")


# --- enterprises across prefixes and nodes ---------------------------------------------------


@STORES
def test_an_enterprise_cannot_batch_write_under_another_enterprise(node: Node) -> None:
    items = [
        {"handle": "88.168.2/BATCH-1", "values": [URL]},
        {"handle": "88.168.2/BED-2024-000001", "values": [URL]},
        {"handle": "0.NA/88.168.2", "values": [URL]},
    ]
    with unchanged(node):
        resp = node.call(
            "POST",
            "/api/batch/handles",
            json={"handles": items, "overwrite": True},
            headers=_auth(ENTERPRISE_1),
        )
    body = expect(resp, 200, 1)
    assert body["failed"] == 3
    assert {r["responseCode"] for r in body["results"]} == {401}


@STORES
def test_an_enterprise_cannot_mint_under_another_enterprise(node: Node) -> None:
    with unchanged(node):
        resp = node.put("88.168.2/", [URL], query="?mintNewSuffix=true")
    expect(resp, 403, 401, "addHandle")


@pytest.mark.parametrize("path", ["88.168.2%2FX", "88.168.1/../88.168.2/X"])
def test_path_tricks_stay_under_the_prefix_they_spell(node: Node, path: str) -> None:
    with unchanged(node):
        expect(node.put(path, [URL], auth=ENTERPRISE_2 if ".." in path else ENTERPRISE_1), 403, 401)


def test_one_nodes_admin_cannot_touch_another_nodes_enterprises(make_node: Any) -> None:
    furniture: Node = make_node("furniture")
    timber: Node = make_node("timber")
    with unchanged(furniture, timber):
        # Its credentials mean nothing on the other node ...
        expect(timber.put("88.169.1/X", [URL], auth=NODE_ADMIN), 403, 404, "not on this node")
        expect(timber.delete("88.169.1/ADMIN", auth=NODE_ADMIN), 403, 404)
        expect(
            furniture.put("88.168.1/X", [URL], auth=("300:88.169/ADMIN", "demo-timber-admin")),
            403,
            404,
        )
        # ... and its own node does not home the other's prefixes.
        expect(furniture.put("0.NA/88.169.1", [URL], auth=NODE_ADMIN), 400, 301)
        expect(furniture.put("88.169.1/X", [URL], auth=NODE_ADMIN), 400, 301)
        # Nor does an enterprise of one node reach an enterprise of the other.
        expect(furniture.put("88.168.1/X", [URL], auth=TIMBER_ENTERPRISE), 403, 404)


def test_the_top_level_admin_registers_a_secondary_node(make_node: Any) -> None:
    top: Node = make_node("cq-top")
    site = {
        "format": "site",
        "value": {
            "version": 1,
            "serialNumber": 1,
            "primarySite": True,
            "attributes": [{"name": "baseUrl", "value": "http://127.0.0.1:18174"}],
            "servers": [
                {
                    "serverId": 1,
                    "address": "127.0.0.1",
                    "interfaces": [
                        {"query": True, "admin": True, "protocol": "HTTP", "port": 18174}
                    ],
                }
            ],
        },
    }
    key = {"format": "key", "value": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}
    values = [
        {"index": 1, "type": "HS_SITE", "data": site},
        _admin(100, "88.174/ADMIN"),
        {"index": 300, "type": "HS_PUBKEY", "data": key},
    ]
    with unchanged(top):
        expect(top.put("0.NA/88.174", values, auth=None), 401, 402)
        expect(top.put("0.NA/88.174", values, auth=(TOP_ADMIN[0], "guess")), 403, 403)
        expect(top.put("0.NA/88.174", values, auth=NODE_ADMIN), 403, 404)
        expect(top.put("0.NA/88.168", [URL], auth=NODE_ADMIN, query="?index=1"), 403, 404)
    expect(top.put("0.NA/88.174", values, auth=TOP_ADMIN), 201, 1)
    referral = top.get("88.174/ANY?recursion=false")
    body = expect(referral, 300, 303)
    assert body["values"][0]["type"] == "HS_SITE"
    record = stored(top.store, "0.NA/88.174")
    assert record is not None
    assert {v["type"] for v in record.values} - {"HS_SIGNATURE"} == {
        "HS_SITE",
        "HS_ADMIN",
        "HS_PUBKEY",
    }
    # Identifiers under a delegated prefix are the secondary node's to write.
    with unchanged(top):
        expect(top.put("88.174/X", [URL], auth=TOP_ADMIN), 400, 301)


# --- registering enterprises -------------------------------------------------------------------


NEW = {
    "prefix": "88.168.7",
    "name": "新家具厂（演示）",
    "nameEn": "New Furniture",
    "secret": "s3cret-77",
}
NEW_ADMIN = ("300:88.168.7/ADMIN", "s3cret-77")


def _auth(identity: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": basic(identity)}


def _register(node: Node, body: Any, identity: tuple[str, str] = NODE_ADMIN) -> Any:
    return node.call("POST", "/api/enterprises", json=body, headers=_auth(identity))


@STORES
def test_a_node_admin_registers_an_enterprise(node: Node) -> None:
    body = expect(_register(node, NEW), 201, 1)
    assert body == {
        "responseCode": 1,
        "handle": "0.NA/88.168.7",
        "prefix": "88.168.7",
        "admin": "300:88.168.7/ADMIN",
        "handles": ["0.NA/88.168.7", "88.168.7/ADMIN"],
    }
    prefix = node.values("88.168.7")
    admins = {
        v["data"]["value"]["handle"]: v["data"]["value"]
        for v in prefix.values()
        if v["type"] == "HS_ADMIN"
    }
    assert admins["88.168.7/ADMIN"]["permissions"] == ENTERPRISE_ADMIN_PERMISSIONS
    assert admins["88.168/ADMIN"]["permissions"] == "111111111111"
    assert prefix[2000]["data"]["value"] == NEW["name"]
    assert 300 not in node.values("88.168.7/ADMIN")  # the secret is never shown
    seckey = stored(node.store, "88.168.7/ADMIN")
    assert seckey is not None
    assert "s3cret-77" not in json.dumps(seckey.values)

    # The new enterprise writes under its own prefix, and only there.
    expect(node.put("88.168.7/P-1", [URL], auth=NEW_ADMIN), 201, 1)
    expect(node.put("88.168.7/P-1", [URL], auth=NEW_ADMIN, query="?index=1"), 200, 1)
    expect(node.delete("88.168.7/P-1", auth=NEW_ADMIN), 200, 1)
    with unchanged(node):
        expect(node.put("88.168.1/P-1", [URL], auth=NEW_ADMIN), 403, 401)
        expect(node.delete("88.168.1/WARD-2024-000123", auth=NEW_ADMIN), 403, 401)
        expect(node.put("88.168.7/P-2", [URL], auth=ENTERPRISE_1), 403, 401)
        # Its prefix record: values yes, admins and the prefix itself no.
        expect(
            node.put(
                "88.168.7", [_admin(100, "88.168.1/ADMIN")], auth=NEW_ADMIN, query="?index=100"
            ),
            403,
            401,
            "modifyAdmin",
        )
        expect(node.delete("88.168.7", auth=NEW_ADMIN), 403, 401, "delDerivedPrefix")
        expect(node.put("88.168.7.1", [URL], auth=NEW_ADMIN), 403, 401, "addDerivedPrefix")
    expect(
        node.put("88.168.7", [_string(3, "EMAIL", "x@y")], auth=NEW_ADMIN, query="?index=3"), 200, 1
    )


@STORES
@pytest.mark.parametrize(
    ("identity", "status", "code"),
    [(ENTERPRISE_1, 403, 401), (("300:88.168/ADMIN", "nope"), 403, 403)],
)
def test_only_the_node_admin_registers_enterprises(
    node: Node, identity: tuple[str, str], status: int, code: int
) -> None:
    with unchanged(node):
        expect(_register(node, NEW, identity), status, code)
        expect(node.call("POST", "/api/enterprises", json=NEW), 401, 402)


@STORES
@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({**NEW, "prefix": "88.168.1"}, 409, 101, ["already exists"]),
        ({**NEW, "prefix": "88.169.7"}, 400, 102, ["below this node's prefix 88.168"]),
        ({**NEW, "prefix": "88.168"}, 400, 102, ["below"]),
        ({**NEW, "prefix": "88..7"}, 400, 102, ["invalid segment"]),
        ({**NEW, "secret": "short"}, 400, 4, ["secret"]),
        ({**NEW, "extra": 1}, 400, 4, ["extra"]),
        ({"prefix": "88.168.7"}, 400, 4, ["name", "secret"]),
        ([NEW], 400, 4, ["body"]),
    ],
)
def test_bad_enterprise_registrations_write_nothing(
    node: Node, body: Any, status: int, code: int, words: list[str]
) -> None:
    with unchanged(node):
        expect(_register(node, body), status, code, *words)


@STORES
def test_registration_is_all_or_nothing(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    real_put = RecordService.put

    def failing_put(self: RecordService, request: Any, identity: Any) -> Any:
        if request.handle.suffix == "ADMIN":
            raise OSError("disk full (injected)")
        return real_put(self, request, identity)

    monkeypatch.setattr(RecordService, "put", failing_put)
    with unchanged(node):
        resp = node.call(
            "POST", "/api/enterprises", json=NEW, headers=_auth(NODE_ADMIN), allow_5xx=True
        )
    assert resp.status_code == 500
    monkeypatch.undo()
    # An existing admin handle (an earlier partial attempt made by hand) stops it before writing.
    node.store.put_many([Record("88.168.7/ADMIN", [URL])])
    with unchanged(node):
        expect(_register(node, NEW), 409, 101, "88.168.7/ADMIN")


def test_idr_admin_enterprise_add(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:18101"
    hierarchy = {
        "nodes": [
            {
                "name": "furniture",
                "role": "secondary",
                "url": url,
                "prefix": "88.168",
                "admin": NODE_ADMIN[0],
                "secret": NODE_ADMIN[1],
            },
            {
                "name": "cq-top",
                "role": "primary",
                "url": "http://127.0.0.1:18100",
                "prefix": "88",
                "admin": TOP_ADMIN[0],
                "secret": TOP_ADMIN[1],
            },
        ]
    }
    (tmp_path / "hierarchy.json").write_text(json.dumps(hierarchy), "utf-8")

    def session() -> Any:
        import requests

        return mount_apps(requests.Session(), {url: node.app})

    monkeypatch.setattr(admin_command, "new_session", session)
    args = [
        "--data-dir",
        str(tmp_path),
        "admin",
        "enterprise",
        "add",
        "--node",
        "furniture",
        "--prefix",
        "88.168.8",
        "--name",
        "八号厂",
        "--name-en",
        "Works 8",
        "--secret",
        "eight-secret",
    ]
    assert idr(args) == 0
    expect(node.put("88.168.8/P", [URL], auth=("300:88.168.8/ADMIN", "eight-secret")), 201, 1)
    with unchanged(node):
        assert idr(args) == 1  # already registered (409/101)
    assert idr([*args[:5], "--node", "cq-top", *args[7:]]) == 2
    assert idr([*args[:5], "--node", "nowhere", *args[7:]]) == 2


# --- failed logins -----------------------------------------------------------------------------


def test_failed_logins_are_logged_without_the_secret(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="idr.auth")
    expect(node.put("88.168.1/L-1", [URL], auth=(ENTERPRISE_1[0], "my-guess-123")), 403, 403)
    expect(node.put("88.168.1/L-1", [URL], auth=("300:88.168.1/NOPE", "other-guess")), 403, 404)
    lines = [r.getMessage() for r in caplog.records if r.name == "idr.auth"]
    assert len(lines) == 2
    assert "300:88.168.1/ADMIN" in lines[0]
    assert "127.0.0.1" in lines[0]
    assert all("guess" not in line for line in lines)


def _from(client: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": client}}


@STORES
def test_repeated_failures_from_one_client_are_slowed_down(node: Node) -> None:
    clock = FakeClock()
    service: RecordService = node.app.extensions["idr.records"]
    service.throttle = FailureThrottle(3, 60.0, clock=clock)
    wrong = (ENTERPRISE_1[0], "guess")
    with unchanged(node):
        for _ in range(3):
            expect(node.put("88.168.1/T-1", [URL], auth=wrong, **_from("10.9.9.9")), 403, 403)
        clock.advance(10)
        # Now even the right secret waits: the guesser learns nothing more.
        resp = node.put("88.168.1/T-1", [URL], allow_5xx=True, **_from("10.9.9.9"))
        body = expect(resp, 503, 3, "too many failed logins", "try again in 50 s")
        assert resp.headers["Retry-After"] == "50"
        assert body["retryAfter"] == 50
        # No credentials at all is still 402, not a login attempt.
        expect(node.put("88.168.1/T-1", [URL], auth=None, **_from("10.9.9.9")), 401, 402)
    # Another client is not affected, and the window passes.
    expect(node.put("88.168.1/T-2", [URL], **_from("10.9.9.8")), 201, 1)
    clock.advance(51)
    expect(node.put("88.168.1/T-1", [URL], **_from("10.9.9.9")), 201, 1)


def test_the_throttle_default_comes_from_the_settings(make_node: Any) -> None:
    node: Node = make_node("furniture", auth_max_failures=2, auth_failure_window=30)
    throttle = node.app.extensions["idr.records"].throttle
    assert (throttle.max_failures, throttle.window) == (2, 30)
    for _ in range(2):
        expect(node.put("88.168.1/T", [URL], auth=(ENTERPRISE_1[0], "x")), 403, 403)
    expect(node.put("88.168.1/T", [URL], allow_5xx=True), 503, 3)
    templates = node.call(
        "PUT", "/api/templates/x.y@1", json={}, headers=_auth(NODE_ADMIN), allow_5xx=True
    )
    expect(templates, 503, 3)


@STORES
def test_an_empty_update_still_needs_a_right(node: Node) -> None:
    with unchanged(node):
        resp = node.put(DOC, [], auth=ENTERPRISE_2, query="?index=various")
    expect(resp, 403, 401, "modifyValue")
    expect(node.put(DOC, [], query="?index=various"), 200, 1)
