"""Hostile requests: every one is refused with a 4xx Handle JSON answer, and the store is
byte-for-byte what it was (every record's stored body, and on Redis the prefix indexes).

Runs on SQLite and on Redis. The cases cover oversized bodies and values, deep nesting,
invalid UTF-8, control characters, `..` and `%2F` path tricks, duplicate and negative
indexes, wrong types, unknown data formats, a handle/body mismatch, garbage
Authorization headers and unsupported methods; hypothesis adds random bodies and headers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idcore.store import Record
from tests.integration.conftest import (
    ENTERPRISE_1,
    ENTERPRISE_2,
    NODE_ADMIN,
    STORES,
    TOP_ADMIN,
    Node,
    basic,
    unchanged,
)

ITEM = "88.168.1/HOSTILE-1"
URL = {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x/1"}}
JSON = "application/json"


@pytest.fixture
def node(make_node: Any, store_kind: str) -> Node:
    """The furniture node with ITEM stored beside the demo seed."""
    furniture: Node = make_node("furniture", store_kind)
    furniture.store.put_many([Record(ITEM, [{**URL, "ttl": 86400, "timestamp": "x"}])])
    return furniture


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the answer it must get."""

    name: str
    status: int
    code: int
    method: str = "PUT"
    path: str = ITEM
    body: Any = field(default_factory=lambda: [URL])
    data: bytes | None = None  # raw body instead of `body`
    content_type: str | None = JSON
    auth: str | None = None  # an Authorization header instead of ENTERPRISE_1's
    query: str = ""
    words: tuple[str, ...] = ()

    def send(self, node: Node) -> Any:
        headers = {"Authorization": self.auth if self.auth is not None else basic(ENTERPRISE_1)}
        if self.auth == "":
            headers = {}
        data = self.data if self.data is not None else json.dumps(self.body).encode()
        path = self.path if self.path.startswith("/") else f"/api/handles/{self.path}"
        kw: dict[str, Any] = {"headers": headers, "data": data}
        if self.content_type is not None:
            kw["content_type"] = self.content_type
        return node.call(self.method, path + self.query, **kw)


def _value(index: Any, vtype: Any = "DESC", data: Any = "x", **extra: Any) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": data, **extra}


def _b64(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def _nest(levels: int) -> Any:
    node: Any = 1
    for _ in range(levels):
        node = [node]
    return node


CASES = [
    # -- oversized --------------------------------------------------------------------------------
    Hostile(
        "body over 8 MiB",
        413,
        4,
        data=b"[" + b" " * (8 * 1024 * 1024 + 1) + b"]",
        words=("too large", "8388608 bytes"),
    ),
    Hostile(
        "value over 4000 characters",
        400,
        202,
        body=[_value(2, data="x" * 4001)],
        words=("4000 characters",),
    ),
    Hostile(
        "value over 16384 bytes",
        400,
        202,
        body=[_value(300, "HS_PUBKEY", {"format": "key", "value": {"x": "A" * 17000}})],
        words=("16384 bytes",),
    ),
    Hostile(
        "1001 values", 400, 202, body=[_value(i) for i in range(1, 1002)], words=("limit is 1000",)
    ),
    Hostile("type over 255 characters", 400, 202, body=[_value(2, "T" * 256)]),
    Hostile("handle over 255 bytes", 400, 102, path="88.168.1/" + "床" * 90, words=("255",)),
    Hostile("path of 20 KB", 400, 102, path="88.168.1/" + "X" * 20_000),
    # -- nesting ----------------------------------------------------------------------------------
    Hostile(
        "nesting 33 deep",
        400,
        4,
        body=[_value(300, "HS_PUBKEY", {"format": "key", "value": _nest(31)})],
        words=("nesting", "32"),
    ),
    Hostile("nesting beyond the parser", 400, 4, data=b"[" * 200_000 + b"]" * 200_000),
    # -- encodings and control characters ---------------------------------------------------------
    Hostile(
        "body not UTF-8", 400, 4, data=b'[{"index":1,"type":"URL","data":"\xff"}]', words=("UTF-8",)
    ),
    Hostile("overlong UTF-8 in body", 400, 4, data=b'["\xc0\xaf"]', words=("UTF-8",)),
    Hostile("UTF-16 body", 400, 4, data=json.dumps([URL]).encode("utf-16")),
    Hostile(
        "lone surrogate escape",
        400,
        4,
        data=b'[{"index":1,"type":"URL","data":"\\ud800"}]',
        words=("surrogate",),
    ),
    Hostile(
        "lone surrogate in a key",
        400,
        4,
        data=b'[{"index":1,"type":"URL","data":"x","\\udfff":1}]',
        words=("surrogate",),
    ),
    *(
        Hostile(
            f"{word} in a value (not JSON)",
            400,
            4,
            data=b'[{"index":1,"type":"URL","data":"x"},{"index":2,"type":"HS_SITE","data":'
            + b'{"format":"site","value":{"servers":[],"weight":'
            + word.encode()
            + b"}}}]",
            words=(word, "not JSON"),
        )
        for word in ("NaN", "Infinity", "-Infinity")
    ),
    Hostile("path not UTF-8", 400, 102, path="88.168.1/%FF%FE", words=("UTF-8",)),
    Hostile("surrogate in path", 400, 102, path="88.168.1/%ED%A0%80", words=("UTF-8",)),
    Hostile("NUL in handle", 400, 102, path="88.168.1/A%00B", words=("control character",)),
    Hostile("ESC in handle", 400, 102, path="88.168.1/A%1B[31m", words=("control character",)),
    Hostile("C1 control in handle", 400, 102, path="88.168.1/A%C2%9BB"),
    Hostile("newline in handle", 400, 102, path="88.168.1/A%0D%0ASet-Cookie:x"),
    Hostile(
        "control character in type",
        400,
        202,
        body=[_value(2, "DESC\x00")],
        words=("control character",),
    ),
    Hostile("control character in prefix", 400, 102, path="88.168%09.1/X"),
    # -- path tricks ------------------------------------------------------------------------------
    Hostile("dot-dot prefix", 400, 102, path="../../etc/passwd", words=("invalid segment",)),
    Hostile("encoded dot-dot prefix", 400, 102, path="%2E%2E/88.168.2/X"),
    Hostile("encoded slash into another enterprise", 403, 401, path="88.168.2%2FX"),
    Hostile("dot-dot out of the own prefix", 403, 401, path="88.168.2/..%2F..%2F88.168.1/X"),
    Hostile("dot-dot into another enterprise", 403, 401, path="88.168.2/../88.168.1/X"),
    Hostile("encoded slash into a prefix record", 403, 401, path="0.NA%2F88.168.2"),
    Hostile("empty prefix", 400, 102, path="/api/handles//88.168.1/X"),
    Hostile("double dot in prefix", 400, 102, path="88..168.1/X"),
    Hostile("mint under another enterprise", 403, 401, path="88.168.2/", query="?mintNewSuffix=1"),
    Hostile(
        "delete through an encoded slash",
        403,
        401,
        method="DELETE",
        path="88.168.2%2FBOOK-2024-000051",
    ),
    # -- indexes ----------------------------------------------------------------------------------
    Hostile("duplicate indexes", 400, 202, body=[_value(2), _value(2)], words=("more than once",)),
    Hostile("duplicate index as string", 400, 202, body=[_value(2), _value("2")]),
    Hostile("negative index", 400, 202, body=[_value(-1)], words=("index",)),
    Hostile("index zero", 400, 202, body=[_value(0)]),
    Hostile("index over 2^31-1", 400, 202, body=[_value(2**31)]),
    Hostile("index as float", 400, 202, body=[_value(1.0)]),
    Hostile("index as bool", 400, 202, body=[_value(True)]),
    Hostile("negative index query", 400, 4, method="DELETE", query="?index=-1"),
    Hostile("huge index query", 400, 4, method="DELETE", query="?index=99999999999999999999"),
    Hostile("index query not matching", 400, 4, query="?index=7"),
    Hostile("index query garbage", 400, 4, query="?index=1;DROP TABLE records"),
    # -- wrong types ------------------------------------------------------------------------------
    Hostile("values is a string", 400, 202, body={"values": "x"}),
    Hostile("values is an object", 400, 202, body={"values": {"index": 1}}),
    Hostile("value is a string", 400, 202, body=["http://x"]),
    Hostile("value is null", 400, 202, body=[None]),
    Hostile("index is a list", 400, 202, body=[_value([1])]),
    Hostile("index is text", 400, 202, body=[_value("one")]),
    Hostile("type is a number", 400, 202, body=[_value(2, 5)]),
    Hostile("type is null", 400, 202, body=[_value(2, None)]),
    Hostile("data is a number", 400, 202, body=[_value(2, data=5)]),
    Hostile("data is null", 400, 202, body=[_value(2, data=None)]),
    Hostile("ttl is text", 400, 202, body=[_value(2, ttl="forever")]),
    Hostile("ttl is negative", 400, 202, body=[_value(2, ttl=-1)]),
    Hostile("ttl is a bool", 400, 202, body=[_value(2, ttl=True)]),
    Hostile("permissions are not bits", 400, 202, body=[_value(2, permissions="2222")]),
    Hostile("body is null", 400, 4, body=None),
    Hostile("body is a number", 400, 4, body=5),
    Hostile("body is true", 400, 4, body=True),
    Hostile("body has no values", 400, 4, body={"value": [URL]}),
    Hostile("empty body", 400, 4, data=b""),
    Hostile("handle field is a number", 400, 4, body={"handle": 5, "values": [URL]}),
    Hostile("overwrite is not a bool", 400, 4, query="?overwrite=maybe"),
    Hostile("mint flag is not a bool", 400, 4, query="?mintNewSuffix=please"),
    # -- data formats -----------------------------------------------------------------------------
    Hostile(
        "unknown format",
        400,
        202,
        body=[_value(2, data={"format": "xml", "value": "<a/>"})],
        words=("format",),
    ),
    Hostile("format null", 400, 202, body=[_value(2, data={"format": None, "value": "x"})]),
    Hostile("format missing", 400, 202, body=[_value(2, data={"value": "x"})]),
    Hostile(
        "extra data member",
        400,
        202,
        body=[_value(2, data={"format": "string", "value": "x", "exec": "rm"})],
    ),
    Hostile(
        "admin data is text",
        400,
        202,
        body=[_value(100, "HS_ADMIN", {"format": "admin", "value": "88.168.1/ADMIN"})],
    ),
    Hostile(
        "admin permissions not bits",
        400,
        202,
        body=[
            _value(
                100,
                "HS_ADMIN",
                {
                    "format": "admin",
                    "value": {"handle": "88.168.1/ADMIN", "index": 300, "permissions": "yes"},
                },
            )
        ],
    ),
    Hostile(
        "vlist is not a list",
        400,
        202,
        body=[_value(2, "HS_VLIST", {"format": "vlist", "value": "a/b"})],
    ),
    Hostile(
        "site without servers",
        400,
        202,
        body=[_value(1, "HS_SITE", {"format": "site", "value": {"servers": "none"}})],
    ),
    Hostile("bad base64", 400, 202, body=[_value(2, data={"format": "base64", "value": "@@@"})]),
    Hostile("bad hex", 400, 202, body=[_value(2, data={"format": "hex", "value": "0g"})]),
    Hostile(
        "secret key as hex",
        400,
        202,
        body=[_value(300, "HS_SECKEY", {"format": "hex", "value": "00"})],
    ),
    # -- handle and body --------------------------------------------------------------------------
    Hostile(
        "body names another handle",
        400,
        4,
        body={"handle": "88.168.2/X", "values": [URL]},
        words=("must match",),
    ),
    Hostile(
        "body names another prefix record",
        400,
        4,
        path="88.168.1",
        body={"handle": "0.NA/88.168.2", "values": [URL]},
        query="?index=1",
    ),
    # -- media types ------------------------------------------------------------------------------
    Hostile("text/plain body", 400, 4, content_type="text/plain", words=("Content-Type",)),
    Hostile("form body", 400, 4, content_type="application/x-www-form-urlencoded"),
    Hostile("no content type", 400, 4, content_type=None),
    Hostile("XML pretending", 400, 4, content_type="application/xml"),
    # -- Authorization ----------------------------------------------------------------------------
    Hostile("no credentials", 401, 402, auth=""),
    Hostile("garbage header", 403, 404, auth="garbage"),
    Hostile("bare Basic", 403, 404, auth="Basic"),
    Hostile("Basic with spaces", 403, 404, auth="Basic    "),
    Hostile("Basic not base64", 403, 404, auth="Basic %%%%"),
    Hostile("Basic of binary", 403, 404, auth=_b64(b"\xff\xfe\x00:\x01")),
    Hostile("Basic of control characters", 403, 404, auth=_b64(b"300%3A88.168.1/\x00:\x07")),
    Hostile("Basic without secret", 403, 404, auth=_b64(b"300%3A88.168.1/ADMIN")),
    Hostile("Basic of 100 KB", 403, 404, auth="Basic " + "QUFB" * 25_000),
    Hostile(
        "Basic with a huge index", 403, 404, auth=_b64(b"99999999999999999999%3A88.168.1/ADMIN:x")
    ),
    Hostile("Bearer token", 403, 404, auth="Bearer eyJhbGciOiJub25lIn0.e30."),
    Hostile("Digest", 403, 404, auth='Digest username="admin", realm="handle"'),
    Hostile(
        "another node's admin", 403, 404, auth=basic(("300:88.169/ADMIN", "demo-timber-admin"))
    ),
    Hostile("top-level admin on a secondary", 403, 404, auth=basic(TOP_ADMIN)),
    Hostile("right identity, wrong secret", 403, 403, auth=basic((ENTERPRISE_1[0], "' OR 1=1 --"))),
    Hostile("another enterprise", 403, 401, auth=basic(ENTERPRISE_2)),
    # -- methods ----------------------------------------------------------------------------------
    Hostile("POST a handle", 405, 5, method="POST"),
    Hostile("PATCH a handle", 405, 5, method="PATCH"),
    Hostile("PROPFIND a handle", 405, 5, method="PROPFIND"),
    Hostile("DELETE the listing", 405, 5, method="DELETE", path="/api/handles"),
    Hostile("PUT the listing", 405, 5, path="/api/handles"),
    Hostile("PUT the statistics", 405, 5, path="/api/stats"),
    Hostile("PUT the health check", 405, 5, path="/_emulator/health"),
    Hostile("PUT a batch", 405, 5, path="/api/batch/handles"),
    Hostile("GET an enterprise registration", 405, 5, method="GET", path="/api/enterprises"),
]


@STORES
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request_is_refused_and_changes_nothing(node: Node, case: Hostile) -> None:
    with unchanged(node):
        resp = case.send(node)
    body = resp.get_json()
    assert (resp.status_code, body["responseCode"]) == (case.status, case.code), body
    for word in case.words:
        assert word.lower() in body["message"].lower(), (word, body["message"])
    if case.auth:
        # Whatever the header held, the answer does not repeat it.
        token = case.auth.partition(" ")[2].strip()
        if len(token) >= 4:
            assert token not in body["message"]
        assert case.auth not in body["message"] or case.auth in ("Basic", "Bearer")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/handles/../../etc/passwd", 400, 102),
        ("GET", "/api/handles/88.168.1%2FWARD-2024-000123", 200, 1),
        ("GET", "/api/handles/88.168.1/%FF", 400, 102),
        ("GET", "/api/handles/88.168.1/A%00", 400, 102),
        ("GET", "/api/handles/88.168.1/X?index=-5", 400, 4),
        ("GET", "/api/handles?prefix=../..", 400, 102),
        ("GET", "/api/handles?prefix=88.168.1&page=-1", 400, 4),
        ("GET", "/api/handles?prefix=88.168.1&pageSize=999999999999999999999", 400, 4),
        ("GET", "/api/templates/..%2F..%2Fetc", 400, 102),
        ("GET", "/_emulator/journal?limit=-1", 400, 4),
        ("GET", "/nope/%FF", 400, 4),
        ("TRACE", "/api/handles/88.168.1/X", 405, 5),
    ],
)
def test_hostile_reads_are_answered_as_handle_json(
    node: Node, method: str, path: str, status: int, code: int
) -> None:
    with unchanged(node):
        resp = node.call(method, path)
    assert (resp.status_code, resp.get_json()["responseCode"]) == (status, code)


@STORES
@pytest.mark.parametrize(
    ("path", "body", "identity", "status", "code"),
    [
        ("0.NA/88.174", [URL], ("300:88.168/ADMIN", "demo-furniture-admin"), 403, 404),
        ("0.NA/88.168", [URL], basic, 403, 401),
        ("0.NA/88.168%2F..%2F88.174", [URL], None, 400, 102),
        ("88.168/X", [URL], None, 400, 301),
        ("0.NA/88.174", {"handle": "0.NA/88.175", "values": [URL]}, None, 400, 4),
        ("0.NA/88.174", [_value(1, "HS_SITE", {"format": "site", "value": []})], None, 400, 202),
    ],
)
def test_hostile_writes_to_the_top_level_change_nothing(
    make_node: Any, store_kind: str, path: str, body: Any, identity: Any, status: int, code: int
) -> None:
    top: Node = make_node("cq-top", store_kind)
    if identity is basic:
        identity = ("300:0.NA/88", "wrong")
        status, code = 403, 403
    with unchanged(top):
        resp = top.put(path, body, auth=identity or TOP_ADMIN)
    assert (resp.status_code, resp.get_json()["responseCode"]) == (status, code)


# --- random bodies and headers -----------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_values = st.lists(
    st.fixed_dictionaries(
        {
            "index": st.integers(-2, 2**32) | st.text(max_size=3),
            "type": st.text(max_size=10),
            "data": _json,
        },
        optional={"ttl": _json, "permissions": _json},
    ),
    max_size=4,
)
_bodies = (
    st.binary(max_size=300)
    | _json.map(lambda v: json.dumps(v).encode())
    | _values.map(lambda v: json.dumps({"values": v}).encode())
)
_latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
_headers = _latin1 | _latin1.map(lambda t: "Basic " + base64.b64encode(t.encode()).decode())


@STORES
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=_bodies, header=_headers, path=st.sampled_from([ITEM, "88.168.2/X", "88.168.1"]))
def test_random_requests_never_break_the_node(
    node: Node, data: bytes, header: str, path: str
) -> None:
    """Random bodies with random credentials: refused (never a 5xx), nothing stored."""
    node.app.extensions["idr.records"].throttle.max_failures = 10**6  # not the point here
    with unchanged(node):
        resp = node.call(
            "PUT",
            f"/api/handles/{path}",
            data=data,
            content_type=JSON,
            headers={"Authorization": header},
        )
    assert 400 <= resp.status_code < 500, resp.get_json()


@STORES
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(values=_values, query=st.sampled_from(["", "?index=various", "?overwrite=false"]))
def test_random_values_are_stored_whole_or_not_at_all(
    node: Node, values: list[Any], query: str
) -> None:
    """Random values with the right credentials: a 4xx stores nothing, never a 5xx."""
    before = node.dump()
    resp = node.call(
        "PUT",
        f"/api/handles/{ITEM}{query}",
        data=json.dumps({"values": values}).encode(),
        content_type=JSON,
        headers={"Authorization": basic(NODE_ADMIN)},
    )
    if resp.status_code >= 400:
        assert resp.status_code < 500
        assert node.dump() == before
    else:
        node.store.put_many([Record(ITEM, [{**URL, "ttl": 86400, "timestamp": "x"}])])
