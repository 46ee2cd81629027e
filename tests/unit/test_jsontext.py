"""The hot-path JSON codec says exactly what the standard library would."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from idcore import jsontext

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(JSON)
def test_what_it_writes_reads_back_as_the_same_value(value: Any) -> None:
    assert json.loads(jsontext.dumps(value)) == value
    assert jsontext.loads(jsontext.dumps(value)) == value


@given(JSON)
def test_it_reads_whatever_the_standard_library_wrote(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsontext.loads(text) == value


def test_integers_beyond_64_bits_and_lone_surrogates_fall_back() -> None:
    huge = {"n": 2**70, "neg": -(2**70)}
    assert jsontext.dumps(huge) == b'{"n":1180591620717411303424,"neg":-1180591620717411303424}'
    assert jsontext.loads(jsontext.dumps(huge)) == huge
    lone = {"s": "\ud800"}
    assert jsontext.dumps(lone) == b'{"s":"\\ud800"}'
    assert jsontext.loads(jsontext.dumps(lone)) == lone


def test_text_stays_unescaped_utf8_and_compact() -> None:
    assert jsontext.dumps({"名称": "衣柜", "a": [1, 2]}) == '{"名称":"衣柜","a":[1,2]}'.encode()
