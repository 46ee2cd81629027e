"""Data templates on a secondary node: the /api/templates API and the check on every write.

In-process furniture node (88.168) with the demo seed, on SQLite and on Redis.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from idcore.demo import DEMO_TEMPLATES
from idcore.settings import NodeSettings
from idcore.template import TemplateRegistry
from secondary_nodes.app import create_app
from tests.integration.conftest import (
    ENTERPRISE_1,
    NODE_ADMIN,
    PRODUCT,
    STORES,
    Node,
    basic,
    expect,
    stored,
    unchanged,
)

pytestmark = STORES

WIDGET: dict[str, Any] = {
    "title_zh": "测试部件",
    "title_en": "Test widget",
    "stage": "product",
    "items": [
        {"code": "name", "name_zh": "名称", "name_en": "Name", "required": True, "max_length": 20},
        {"code": "weight", "name_zh": "重量", "name_en": "Weight", "type": "number", "min": 0},
        {"code": "made", "name_zh": "日期", "name_en": "Made", "type": "date", "required": True},
        {"code": "part", "name_zh": "部件", "name_en": "Part", "type": "reference"},
    ],
}


@pytest.fixture
def node(make_node: Any, store_kind: str) -> Node:
    built: Node = make_node("furniture", store_kind)
    return built


def _v(index: int, vtype: str, text: str) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}}


def _widget_values(**items: str) -> list[dict[str, Any]]:
    values = [_v(1, "URL", "http://x/1"), _v(1001, "IDIS.TEMPLATE", "test.widget@1")]
    fields = {"name": "widget", "made": "2024-05-01", **items}
    for offset, (code, text) in enumerate(fields.items()):
        values.append(_v(2000 + offset, code, text))
    return values


def put_template(
    node: Node,
    name: str,
    body: Any,
    auth: tuple[str, str] | None = NODE_ADMIN,
    query: str = "",
) -> TestResponse:
    headers = {"Authorization": basic(auth)} if auth else {}
    return node.call(
        "PUT",
        f"/api/templates/{name}{query}",
        headers=headers,
        data=json.dumps(body),
        content_type="application/json",
    )


def delete_template(
    node: Node, name: str, auth: tuple[str, str] | None = NODE_ADMIN
) -> TestResponse:
    headers = {"Authorization": basic(auth)} if auth else {}
    return node.call("DELETE", f"/api/templates/{name}", headers=headers)


# --- reading ---------------------------------------------------------------------------------


def test_the_demo_templates_are_listed_and_readable(node: Node) -> None:
    body = expect(node.call("GET", "/api/templates"), 200, 1)
    names = [t["name"] for t in body["templates"]]
    assert names == sorted(names)
    assert {"furniture.product@1", "furniture.batch@1", "process.step@1"} <= set(names)
    assert "enterprise.profile@1" in names
    assert body["totalCount"] == len(names) and body["prefix"] == "88.168"
    one = expect(node.call("GET", "/api/templates/furniture.product@1"), 200, 1)
    assert one["handle"] == "88.168/TEMPLATE.furniture.product@1"
    assert one["template"] == DEMO_TEMPLATES["furniture.product@1"].to_json()
    # Templates are identifiers too.
    record = expect(node.get("88.168/TEMPLATE.furniture.product@1"), 200, 1)
    definition = next(v for v in record["values"] if v["type"] == "IDIS.TEMPLATE.DEF")
    assert json.loads(definition["data"]["value"])["name"] == "furniture.product@1"


def test_unknown_and_malformed_template_names(node: Node) -> None:
    body = expect(node.call("GET", "/api/templates/no.such@1"), 404, 100, "no template")
    assert body["handle"] == "88.168/TEMPLATE.no.such@1"
    expect(node.call("GET", "/api/templates/Not A Name"), 400, 102, "template name")
    expect(put_template(node, "bad name@1", WIDGET), 400, 102)


# --- writing templates -----------------------------------------------------------------------


def test_the_node_admin_registers_replaces_and_deletes_a_template(node: Node) -> None:
    expect(put_template(node, "test.widget@1", WIDGET), 201, 1)
    got = expect(node.call("GET", "/api/templates/test.widget@1"), 200, 1)["template"]
    assert got["name"] == "test.widget@1" and len(got["items"]) == 4
    changed = {**WIDGET, "title_en": "Widget, revised"}
    expect(put_template(node, "test.widget@1", {"name": "test.widget@1", **changed}), 200, 1)
    got = expect(node.call("GET", "/api/templates/test.widget@1"), 200, 1)["template"]
    assert got["title_en"] == "Widget, revised"
    with unchanged(node):
        expect(put_template(node, "test.widget@1", WIDGET, query="?overwrite=false"), 409, 101)
    expect(delete_template(node, "test.widget@1"), 200, 1)
    expect(node.call("GET", "/api/templates/test.widget@1"), 404, 100)
    expect(delete_template(node, "test.widget@1"), 404, 100)


def test_template_writes_need_the_node_admin(node: Node) -> None:
    expect(put_template(node, "test.widget@1", WIDGET), 201, 1)
    with unchanged(node):
        expect(put_template(node, "test.widget@2", WIDGET, auth=None), 401, 402)
        expect(put_template(node, "test.widget@2", WIDGET, auth=(NODE_ADMIN[0], "wrong")), 403, 403)
        # An enterprise admin has no rights over the node's own prefix.
        expect(put_template(node, "test.widget@2", WIDGET, auth=ENTERPRISE_1), 403, 401)
        expect(delete_template(node, "test.widget@1", auth=ENTERPRISE_1), 403, 401)
        expect(delete_template(node, "test.widget@1", auth=None), 401, 402)


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({**WIDGET, "items": []}, 400, 202, "items"),
        ({**WIDGET, "stage": "nowhere"}, 400, 202, "stage"),
        ({**WIDGET, "items": [{"code": "x"}]}, 400, 202, "name_zh"),
        ({"name": "other.widget@1", **WIDGET}, 400, 4, "must match"),
        (["not", "an", "object"], 400, 4, "template JSON object"),
    ],
)
def test_an_invalid_template_is_refused_and_nothing_is_written(
    node: Node, body: Any, status: int, code: int, words: str
) -> None:
    with unchanged(node):
        answer = expect(put_template(node, "test.widget@1", body), status, code, words)
    if code == 202:
        assert answer["problems"]


# --- the check on every write ------------------------------------------------------------------


@pytest.fixture
def widget(node: Node) -> Node:
    """The node with test.widget@1 registered and one good record 88.168.1/W-1."""
    expect(put_template(node, "test.widget@1", WIDGET), 201, 1)
    expect(node.put("88.168.1/W-1", _widget_values(weight="3")), 201, 1)
    return node


def test_a_good_record_is_written(widget: Node) -> None:
    values = widget.values("88.168.1/W-1")
    assert values[1001]["data"]["value"] == "test.widget@1"
    assert values[2002]["type"] == "weight"


def test_a_bad_record_answers_202_listing_every_offending_item(widget: Node) -> None:
    values = [
        _v(1001, "IDIS.TEMPLATE", "test.widget@1"),
        _v(2000, "name", "x" * 21),
        _v(2001, "weight", "-1"),
        _v(2002, "part", "not-a-handle"),
        _v(2003, "colour", "red"),
    ]
    with unchanged(widget):
        body = expect(widget.put("88.168.1/W-2", values), 400, 202, "test.widget@1")
    assert body["handle"] == "88.168.1/W-2"
    problems = {(p["item"], p["index"]) for p in body["problems"]}
    assert problems == {("name", 2000), ("weight", 2001), ("part", 2002), ("colour", 2003),
                        ("made", None)}  # fmt: skip


def test_an_unknown_template_is_202(widget: Node) -> None:
    with unchanged(widget):
        body = expect(
            widget.put("88.168.1/W-3", [_v(1001, "IDIS.TEMPLATE", "test.widget@7")]),
            400,
            202,
            "unknown template",
        )
    assert body["problems"]


def test_a_partial_update_is_checked_against_the_whole_record(widget: Node) -> None:
    before = stored(widget.store, "88.168.1/W-1")
    assert before is not None
    with unchanged(widget):
        expect(
            widget.put("88.168.1/W-1", [_v(2002, "weight", "heavy")], query="?index=2002"),
            400,
            202,
            "weight",
        )
        expect(
            widget.put("88.168.1/W-1", [_v(2010, "colour", "red")], query="?index=2010"),
            400,
            202,
            "colour",
        )
    assert stored(widget.store, "88.168.1/W-1").dumps() == before.dumps()  # type: ignore[union-attr]
    expect(widget.put("88.168.1/W-1", [_v(2002, "weight", "4.5")], query="?index=2002"), 200, 1)
    expect(
        widget.put("88.168.1/W-1", [_v(3000, "TRACE.INPUT", "88.169.1/X")], query="?index=3000"),
        200,
        1,
    )


def test_deleting_a_required_value_is_refused_but_an_optional_one_is_not(widget: Node) -> None:
    before = stored(widget.store, "88.168.1/W-1")
    with unchanged(widget):
        expect(widget.delete("88.168.1/W-1", query="?index=2001"), 400, 202, "made")
    assert stored(widget.store, "88.168.1/W-1").dumps() == before.dumps()  # type: ignore[union-attr]
    expect(widget.delete("88.168.1/W-1", query="?index=2002"), 200, 1)
    # Dropping the template value leaves a plain Handle record; deleting the record is fine.
    expect(widget.delete("88.168.1/W-1", query="?index=1001"), 200, 1)
    expect(widget.put("88.168.1/W-1", [_v(2009, "free", "form")], query="?index=2009"), 200, 1)
    expect(widget.delete("88.168.1/W-1"), 200, 1)


def test_records_without_a_template_stay_plain_handle_records(widget: Node) -> None:
    values = [_v(1, "URL", "http://x"), _v(2000, "anything", "x" * 300), _v(3000, "TRACE.X", "?")]
    expect(widget.put("88.168.1/PLAIN-1", values), 201, 1)


def test_a_template_record_written_as_a_handle_is_checked_too(widget: Node) -> None:
    record = expect(widget.get("88.168/TEMPLATE.test.widget@1"), 200, 1)
    values = [v for v in record["values"] if v["type"] != "HS_ADMIN"]
    bad = copy.deepcopy(values)
    for value in bad:
        if value["type"] == "IDIS.TEMPLATE.DEF":
            value["data"]["value"] = '{"name": "test.widget@1"}'
    with unchanged(widget):
        expect(widget.put("88.168/TEMPLATE.test.widget@1", bad, auth=NODE_ADMIN), 400, 202)
    expect(widget.put("88.168/TEMPLATE.test.widget@1", values, auth=NODE_ADMIN), 200, 1)


def test_the_demo_records_pass_their_own_check(node: Node) -> None:
    values = list(node.values(PRODUCT).values())
    expect(node.put(PRODUCT, values), 200, 1)
    assert node.values(PRODUCT)[1001]["data"]["value"] == "furniture.product@1"


# --- cache invalidation, also across workers --------------------------------------------------


def test_a_changed_template_applies_at_once_in_every_worker(widget: Node, tmp_path: Path) -> None:
    # A second app on the same store: another gunicorn worker of the same node.
    worker = _same_store_worker(widget, tmp_path)
    expect(worker.put("88.168.1/W-1", _widget_values(weight="5")), 200, 1)
    stricter = copy.deepcopy(WIDGET)
    stricter["items"].append(
        {"code": "serial", "name_zh": "序列号", "name_en": "Serial", "required": True}
    )
    expect(put_template(widget, "test.widget@1", stricter), 200, 1)
    # The other worker checked with the old version a moment ago; it must see the new one.
    body = expect(worker.put("88.168.1/W-1", _widget_values(weight="6")), 400, 202, "serial")
    assert body["problems"] == [
        {"index": None, "item": "serial", "message": "required item 'serial' (Serial) is missing"}
    ]
    expect(worker.put("88.168.1/W-1", _widget_values(weight="6", serial="S-1")), 200, 1)
    expect(delete_template(widget, "test.widget@1"), 200, 1)
    expect(worker.put("88.168.1/W-1", _widget_values(serial="S-1")), 400, 202, "unknown template")


def _same_store_worker(node: Node, tmp_path: Path) -> Node:
    app = create_app(NodeSettings(node="furniture", data_dir=tmp_path / "worker"), node.store)
    app.extensions["idr.records"]._verifier = node.app.extensions["idr.records"]._verifier
    return Node("furniture", app, node.store)


def test_lookups_reread_the_store_but_parse_each_version_once(widget: Node) -> None:
    registry: TemplateRegistry = widget.app.extensions["idr.templates"]
    first = registry.lookup("test.widget@1")
    assert first is not None and registry.lookup("test.widget@1") is first  # parsed once
    with registry.session():
        assert registry.lookup("test.widget@1") is first
        assert registry.lookup("no.such@1") is None
    # Cost of the check per write, measured: a store read plus the item checks.
    record = stored(widget.store, "88.168.1/W-1")
    assert record is not None
    began = time.perf_counter()
    for _ in range(200):
        registry.validate(record)
    per_write = (time.perf_counter() - began) / 200
    print(
        f"\ntemplate check per write ({widget.store.__class__.__name__}): {per_write * 1e6:.0f} µs"
    )
    assert per_write < 0.01
