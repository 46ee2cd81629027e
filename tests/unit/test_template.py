"""Data templates, pure: the template model, one item's check, a whole record's check."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idcore.batch import nesting_exceeds
from idcore.errors import InvalidValue
from idcore.store import Record
from idcore.template import (
    DEF_TYPE,
    Template,
    TemplateItem,
    check_item,
    check_record,
    is_template_handle,
    is_template_name,
    parse_template,
    record_problems,
    template_from_record,
    template_handle,
    template_record,
)
from idcore.web import _depth

TEMPLATE: dict[str, Any] = {
    "name": "test.widget@1",
    "title_zh": "测试部件",
    "title_en": "Test widget",
    "stage": "product",
    "items": [
        {"code": "name", "name_zh": "名称", "name_en": "Name", "required": True, "max_length": 10},
        {"code": "weight", "name_zh": "重量", "name_en": "Weight", "type": "number", "min": 0,
         "max": 100},
        {"code": "made", "name_zh": "日期", "name_en": "Made", "type": "date", "required": True},
        {"code": "at", "name_zh": "时间", "name_en": "At", "type": "datetime"},
        {"code": "home", "name_zh": "网址", "name_en": "Home", "type": "url"},
        {"code": "part", "name_zh": "部件", "name_en": "Part", "type": "reference"},
        {"code": "photo", "name_zh": "图片", "name_en": "Photo", "type": "image"},
    ],
}  # fmt: skip


def _tpl(**changes: Any) -> Template:
    return parse_template({**TEMPLATE, **changes})


def _item(kind: str, **extra: Any) -> TemplateItem:
    return TemplateItem(code="x", name_zh="x", name_en="x", type=kind, **extra)  # type: ignore[arg-type]


def _v(index: int, vtype: str, text: Any, fmt: str = "string") -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": fmt, "value": text}}


def _good() -> list[dict[str, Any]]:
    return [
        _v(1, "URL", "http://x/t/88.168.1/W-1"),
        _v(1001, "IDIS.TEMPLATE", "test.widget@1"),
        _v(2000, "name", "widget"),
        _v(2001, "weight", "12.5"),
        _v(2002, "made", "2024-05-01"),
        _v(3000, "TRACE.INPUT", "88.169.1/LOT-1"),
    ]


def _lookup(name: str) -> Template | None:
    return _tpl() if name == "test.widget@1" else None


# --- the template model ----------------------------------------------------------------


def test_a_template_parses_and_round_trips_through_its_json() -> None:
    template = _tpl()
    assert (template.family, template.version, template.stage) == ("test.widget", 1, "product")
    assert template.item("weight") is not None and template.item("nope") is None
    again = parse_template(json.loads(json.dumps(template.to_json())))
    assert again == template
    assert "min" not in template.to_json()["items"][0]  # None limits are left out


@pytest.mark.parametrize(
    "name",
    ["furniture.product@1", "battery.cell_lot@2", "a@1", "x.y.z@123"],
)
def test_template_names(name: str) -> None:
    assert is_template_name(name)


@pytest.mark.parametrize(
    "name",
    ["furniture.product", "Furniture.product@1", "a@0", "a@01", "a..b@1", ".a@1", "a@1.0",
     "a b@1", "a@", "@1", "", "a/b@1", "a@1\n"],
)  # fmt: skip
def test_bad_template_names(name: str) -> None:
    assert not is_template_name(name)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"items": []}, "items"),
        ({"stage": "nowhere"}, "stage"),
        ({"items": [TEMPLATE["items"][0], TEMPLATE["items"][0]]}, "more than once"),
        ({"items": [{**TEMPLATE["items"][1], "min": 5, "max": 1}]}, "greater than max"),
        ({"items": [{**TEMPLATE["items"][0], "min": 1}]}, "number items"),
        ({"items": [{**TEMPLATE["items"][0], "code": "TRACE.INPUT"}]}, "code"),
        ({"items": [{**TEMPLATE["items"][0], "code": "URL"}]}, "reserved"),
        ({"items": [{**TEMPLATE["items"][0], "type": "file"}]}, "type"),
        ({"items": [{**TEMPLATE["items"][0], "max_length": 0}]}, "max_length"),
        ({"items": [{**TEMPLATE["items"][1], "max": math.inf}]}, "finite"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_templates_answer_202_with_every_problem(
    change: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_template({**TEMPLATE, **change})
    assert caught.value.code == 202
    assert words.lower() in caught.value.message.lower()
    assert caught.value.details["problems"]


def test_several_template_problems_are_all_listed() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_template({**TEMPLATE, "name": "X", "title_zh": "", "items": [{"code": "1"}]})
    problems = caught.value.details["problems"]
    assert len(problems) >= 4
    assert any(p.startswith("name") for p in problems)
    assert any(p.startswith("title_zh") for p in problems)


# --- one item ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", ["", "abc", "中文"], []),
        ("number", ["0", "-1", "+2.5", "1e3", ".5", "7."], ["x", "1,5", "1_000", "nan", "inf",
                                                             " 1", "0x10", "1e999"]),
        ("date", ["2024-02-29", "1999-12-31"], ["2023-02-29", "2024-13-01", "20240101",
                                                "2024-1-1", "2024-01-01T00:00:00Z"]),
        ("datetime", ["2024-05-01T08:30:00Z", "2024-05-01 08:30", "2024-05-01T08:30:00.123+08:00",
                      "2024-05-01T08:30:00+0800"], ["2024-05-01", "2024-05-01T25:00:00Z",
                                                    "yesterday", "2024-05-01T08:30:00 Z"]),
        ("url", ["http://a.b/c", "HTTPS://x.cn/?q=1"],
         ["ftp://x", "http://", "x.cn", "http://a b"]),
        ("reference", ["88.169.1/LOT-1", "0.NA/88.168"], ["88.169.1", "/x", "88.169.1/",
                                                         "a b/\x00"]),
        ("image", ["https://x.cn/a.png", "data:image/png;base64,iVBORw0KGgo="],
         ["data:text/plain;base64,aGk=", "a.png"]),
    ],
)  # fmt: skip
def test_each_item_type_accepts_and_refuses(kind: str, good: list[str], bad: list[str]) -> None:
    item = _item(kind)
    for text in good:
        assert check_item(item, text) is None, (kind, text)
    for text in bad:
        why = check_item(item, text)
        assert why and "'x'" in why, (kind, text)


def test_limits_and_required() -> None:
    assert check_item(_item("string", max_length=3), "abcd") == (
        "item 'x' is 4 characters: the limit is 3"
    )
    assert check_item(_item("number", min=1, max=2), "0.5") == "item 'x' is 0.5: the minimum is 1"
    assert check_item(_item("number", min=1, max=2), "3") == "item 'x' is 3: the maximum is 2"
    assert check_item(_item("number", required=True), "") == "required item 'x' is empty"
    assert check_item(_item("number"), "") is None  # optional and empty: nothing to check
    assert (
        check_item(_item("string"), 5) == "item 'x' must be a string value (data format 'string')"
    )


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(min_value=0, max_value=1e3),
)
def test_numbers_in_range_pass_and_out_of_range_fail(x: float, low: float, span: float) -> None:
    item = _item("number", min=low, max=low + span)
    why = check_item(item, repr(x))
    assert (why is None) == (low <= x <= low + span), (x, low, span, why)


@given(st.dates())
def test_every_calendar_date_is_a_date(day: date) -> None:
    text = day.isoformat()
    assert check_item(_item("date"), text) is None
    assert check_item(_item("datetime"), text) is not None


@given(st.datetimes(timezones=st.sampled_from([None, UTC])))
def test_every_iso_datetime_is_a_datetime(moment: datetime) -> None:
    text = moment.isoformat(timespec="seconds")
    assert check_item(_item("datetime"), text) is None
    assert check_item(_item("datetime"), text.replace("+00:00", "Z")) is None


@settings(max_examples=300)
@given(
    st.sampled_from(["string", "number", "date", "datetime", "url", "reference", "image"]),
    st.text(max_size=60),
)
def test_any_text_gets_an_answer_never_an_exception(kind: str, text: str) -> None:
    why = check_item(_item(kind), text)
    assert why is None or isinstance(why, str)


# --- a whole record ----------------------------------------------------------------------


def test_a_record_that_follows_its_template_passes() -> None:
    check_record(Record("88.168.1/W-1", _good()), _lookup)


def test_a_record_without_index_1001_is_a_plain_handle_record() -> None:
    values = [_v(1, "URL", "x"), _v(2000, "anything", "goes"), _v(3000, "TRACE.X", "not a handle")]
    check_record(Record("88.168.1/W-1", values), _lookup)


def test_every_offending_item_is_listed_in_one_answer() -> None:
    values = [
        _v(1001, "IDIS.TEMPLATE", "test.widget@1"),
        _v(2000, "name", "far too long a name"),  # max_length 10
        _v(2001, "weight", "heavy"),  # not a number
        # `made` (required) missing
        _v(2003, "at", "2024-05-01"),  # a date, not a date-time
        _v(2004, "home", "www.example.com"),  # not a URL
        _v(2005, "part", "LOT-1"),  # not an identifier
        _v(2006, "colour", "red"),  # not in the template
        _v(2007, "weight", "3"),  # the same item twice
        _v(2008, "photo", {"x": 1}, "admin"),  # not a string value
        _v(3000, "TRACE.INPUT", "nowhere"),  # an edge must name an identifier
    ]
    with pytest.raises(InvalidValue) as caught:
        check_record(Record("88.168.1/W-2", values), _lookup)
    error = caught.value
    assert (error.code, error.http_status, error.handle) == (202, 400, "88.168.1/W-2")
    problems = error.details["problems"]
    by_item = {(p["item"], p["index"]) for p in problems}
    assert {
        ("name", 2000),
        ("weight", 2001),
        ("made", None),
        ("at", 2003),
        ("home", 2004),
        ("part", 2005),
        ("colour", 2006),
        ("weight", 2007),
        ("photo", 2008),
        (None, 3000),
    } == by_item
    assert "test.widget@1" in error.message and "10 problem(s)" in error.message
    assert all(isinstance(p["message"], str) and p["message"] for p in problems)


def test_record_problems_is_empty_for_a_good_record() -> None:
    assert record_problems(_tpl(), _good()) == []


def test_unknown_template_is_202() -> None:
    values = [_v(1001, "IDIS.TEMPLATE", "test.widget@9")]
    with pytest.raises(InvalidValue) as caught:
        check_record(Record("88.168.1/W-3", values), _lookup)
    assert caught.value.code == 202
    assert "unknown template 'test.widget@9'" in caught.value.message
    assert caught.value.details["problems"][0]["index"] == 1001


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([_v(1001, "DESC", "test.widget@1")], "reserved"),
        ([_v(1001, "IDIS.TEMPLATE", "not a name")], "not a template name"),
        ([_v(1001, "IDIS.TEMPLATE", {"handle": "x", "index": 1}, "admin")], "template name"),
        ([_v(5, "IDIS.TEMPLATE", "test.widget@1")], "belongs at index 1001"),
    ],
)
def test_index_1001_is_reserved_for_the_template(values: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        check_record(Record("88.168.1/W-4", values), _lookup)
    assert words in caught.value.message


# --- template records ------------------------------------------------------------------


def test_a_template_record_holds_the_definition_and_reads_back() -> None:
    template = _tpl()
    record = template_record("88.168", template, "2024-05-01T00:00:00Z")
    assert record.handle == template_handle("88.168", "test.widget@1")
    assert record.handle == "88.168/TEMPLATE.test.widget@1"
    assert is_template_handle(record.handle, "88.168")
    assert is_template_handle("88.168/template.x@1", "88.168")
    assert not is_template_handle("88.168.1/TEMPLATE.x@1", "88.168")
    types = {v["index"]: v["type"] for v in record.values}
    assert types == {2: "DESC", 10: DEF_TYPE, 100: "HS_ADMIN"}
    assert template_from_record(record) == template
    # A template record written as a plain record is checked too.
    check_record(record, _lookup, "88.168")


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda r: Record(r.handle, [v for v in r.values if v["type"] != DEF_TYPE]), "exactly one"),
        (lambda r: Record("88.168/TEMPLATE.other@1", r.values), "the handle must be"),
        (
            lambda r: Record(
                r.handle,
                [
                    {**v, "data": {"format": "string", "value": "{"}}
                    if v["type"] == DEF_TYPE
                    else v
                    for v in r.values
                ],
            ),
            "not JSON",
        ),
    ],
)
def test_a_bad_template_record_is_refused(mangle: Any, words: str) -> None:
    record = mangle(template_record("88.168", _tpl(), "2024-05-01T00:00:00Z"))
    with pytest.raises(InvalidValue) as caught:
        check_record(record, _lookup, "88.168")
    assert words in caught.value.message


# --- the batch body's depth check agrees with the web layer's ---------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=30,
)


@given(_json, st.integers(min_value=0, max_value=8))
def test_nesting_check_matches_the_web_layer(body: Any, limit: int) -> None:
    assert nesting_exceeds(body, limit) == (_depth(body) > limit)
