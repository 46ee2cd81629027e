"""Identifier syntax: handles, prefixes and what a scanner delivers (property tests)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from idcore.errors import InvalidHandle
from idcore.identifier import (
    MAX_HANDLE_BYTES,
    MAX_PREFIX_BYTES,
    Handle,
    ancestors,
    fold,
    from_scan,
    is_within,
    parse_handle,
    parse_prefix,
    validate_prefix,
)

# --- strategies -------------------------------------------------------------------

_ASCII_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
segments = st.text(_ASCII_LETTERS + "0123456789_-", min_size=1, max_size=6)
digit_segments = st.text("0123456789", min_size=1, max_size=4)
# At most 5 segments of 6 characters: always within the 64-byte prefix limit.
prefixes = (
    st.lists(segments, min_size=1, max_size=5).map(".".join).filter(lambda p: p.upper() != "0.NA")
)
# What IDIS prefixes look like: 88.168.1 (digits only, at least two segments).
idis_prefixes = st.lists(digit_segments, min_size=2, max_size=4).map(".".join)
# Anything but control characters (and lone surrogates, which cannot be UTF-8).
suffix_chars = st.characters(blacklist_categories=("Cc", "Cs"))
suffixes = st.text(suffix_chars, min_size=1, max_size=30)
# Every Unicode control character (category Cc): C0, DEL and C1.
controls = st.sampled_from([chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))])


def _fits(prefix: str, suffix: str) -> bool:
    return len(f"{prefix}/{suffix}".encode()) <= MAX_HANDLE_BYTES


def _rejected(text: str) -> str:
    with pytest.raises(InvalidHandle) as info:
        parse_handle(text)
    assert info.value.code == 102
    return info.value.message


# --- round trips -----------------------------------------------------------------


@given(prefixes, suffixes)
@example("88.168.1", "WARD-2024-000123")
@example("20.500.12345", "abc/def/ghi")
@example("88.168.1", "衣柜-2024 / 演示")
def test_parse_keeps_prefix_and_suffix_as_written(prefix: str, suffix: str) -> None:
    assume(_fits(prefix, suffix))
    handle = parse_handle(f"{prefix}/{suffix}")
    assert handle == Handle(prefix, suffix)
    assert handle.text == str(handle) == f"{prefix}/{suffix}"
    assert parse_handle(handle.text) == handle
    assert not handle.is_prefix_record
    assert handle.homed_prefix == prefix


@given(prefixes, suffixes)
def test_the_suffix_may_contain_slashes(prefix: str, suffix: str) -> None:
    text = f"{prefix}/{suffix}/{suffix}"
    assume(_fits(prefix, f"{suffix}/{suffix}"))
    assert parse_handle(text).suffix == f"{suffix}/{suffix}"


# --- case: ASCII folds, nothing else does -------------------------------------------


@given(prefixes, suffixes)
def test_key_folds_ascii_letters_only(prefix: str, suffix: str) -> None:
    assume(_fits(prefix, suffix))
    handle = parse_handle(f"{prefix}/{suffix}")
    key = handle.key
    assert len(key) == len(handle.text)
    for original, folded in zip(handle.text, key, strict=True):
        if "a" <= original <= "z":
            assert folded == original.upper()
        else:
            assert folded == original  # non-ASCII (é, ß, 衣) and everything else untouched


@given(prefixes, suffixes)
def test_ascii_case_variants_share_one_key(prefix: str, suffix: str) -> None:
    assume(_fits(prefix, suffix))
    lower = parse_handle(f"{prefix.lower()}/{suffix}".translate(_ASCII_LOWER))
    upper = parse_handle(f"{prefix.upper()}/{suffix}".translate(_ASCII_UPPER))
    assert lower.key == upper.key


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@pytest.mark.parametrize(("a", "b"), [("é", "É"), ("ß", "SS"), ("ı", "I"), ("ﬁ", "FI"), ("ǅ", "Ǆ")])
def test_non_ascii_case_is_not_folded(a: str, b: str) -> None:
    assert parse_handle(f"88.168.1/X-{a}").key != parse_handle(f"88.168.1/X-{b}").key
    assert fold(a) == a


def test_fold_is_ascii_uppercase() -> None:
    assert fold("88.168.1/ward-é") == "88.168.1/WARD-é"


# --- limits ----------------------------------------------------------------------


def test_prefix_limit_is_64_bytes() -> None:
    prefix = "88." + "1" * (MAX_PREFIX_BYTES - 3)
    assert len(prefix.encode()) == MAX_PREFIX_BYTES
    assert validate_prefix(prefix) == prefix
    assert parse_handle(f"{prefix}/X").prefix == prefix
    message = _rejected(f"{prefix}1/X")
    assert f"{MAX_PREFIX_BYTES + 1} bytes" in message
    assert f"limit is {MAX_PREFIX_BYTES} bytes" in message


def test_handle_limit_is_255_bytes() -> None:
    prefix = "88.168.1"
    suffix = "S" * (MAX_HANDLE_BYTES - len(prefix) - 1)
    assert parse_handle(f"{prefix}/{suffix}").suffix == suffix
    message = _rejected(f"{prefix}/{suffix}S")
    assert f"{MAX_HANDLE_BYTES + 1} bytes" in message
    assert f"limit is {MAX_HANDLE_BYTES} bytes" in message


def test_handle_limit_counts_utf8_bytes_not_characters() -> None:
    # 衣 is three bytes in UTF-8: 82 of them make 246 + 9 = 255 bytes.
    assert parse_handle("88.168.1/" + "衣" * 82)
    message = _rejected("88.168.1/" + "衣" * 83)
    assert "258 bytes" in message
    assert "UTF-8" in message


@given(prefixes, st.text(suffix_chars, min_size=1, max_size=200))
def test_length_is_accepted_exactly_up_to_the_limit(prefix: str, suffix: str) -> None:
    text = f"{prefix}/{suffix}"
    if len(text.encode()) <= MAX_HANDLE_BYTES:
        assert parse_handle(text).text == text
    else:
        assert f"limit is {MAX_HANDLE_BYTES} bytes" in _rejected(text)


def test_over_long_prefix_record_is_refused() -> None:
    assert "limit is 64 bytes" in _rejected("88." + "1" * 70)


# --- control characters ------------------------------------------------------------


@given(prefixes, suffixes, controls, st.integers(min_value=0))
@example("88.168.1", "WARD", "\x00", 0)
@example("88.168.1", "WARD", "\n", 2)
@example("88.168.1", "WARD", "\x7f", 4)
@example("88.168.1", "WARD", "\x85", 1)  # NEL: a C1 control character
def test_control_characters_are_refused_naming_the_rule(
    prefix: str, suffix: str, control: str, where: int
) -> None:
    assert unicodedata.category(control) == "Cc"
    at = where % (len(suffix) + 1)
    bad = suffix[:at] + control + suffix[at:]
    message = _rejected(f"{prefix}/{bad}")
    assert "control character" in message
    assert "not allowed" in message
    assert f"position {len(prefix) + 1 + at}" in message


@pytest.mark.parametrize("control", ["\x00", "\t", "\x1f", "\x7f", "\x9f"])
def test_control_characters_in_the_prefix_are_refused(control: str) -> None:
    assert "control character" in _rejected(f"88.1{control}68/X")
    with pytest.raises(InvalidHandle, match="control character"):
        validate_prefix(f"88.{control}")


# --- malformed -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", ["empty"]),
        ("88.168.1/", ["empty suffix"]),
        ("/WARD", ["empty prefix"]),
        ("88..168/X", ["invalid segment ''", "single dots"]),
        ("88.168./X", ["invalid segment ''"]),
        (".88/X", ["invalid segment ''"]),
        ("88.1 68/X", ["invalid segment '1 68'", "letters, digits"]),
        ("88.16$8/X", ["invalid segment '16$8'"]),
        ("88.衣/X", ["invalid segment '衣'"]),
        ("0.NA/", ["empty suffix"]),
        ("0.NA/88.168/X", ["invalid segment"]),
        ("0.NA/88..1", ["invalid segment ''"]),
        ("88 168", ["invalid segment"]),
    ],
)
def test_malformed_handles_are_refused_naming_the_rule(text: str, words: list[str]) -> None:
    message = _rejected(text)
    for word in words:
        assert word in message, (word, message)


@given(prefixes)
def test_invalid_segment_characters_are_refused(prefix: str) -> None:
    for bad in ("+", "*", "#", "é", ":"):
        assert "invalid segment" in _rejected(f"{prefix}{bad}/X")


# --- prefix records: 0.NA/88.168 and bare 88.168 ----------------------------------------


@pytest.mark.parametrize("text", ["0.NA/88.168", "88.168", "0.na/88.168"])
def test_prefix_record_forms(text: str) -> None:
    handle = parse_handle(text)
    assert handle.is_prefix_record
    assert handle.homed_prefix == "88.168"
    assert handle.key == "0.NA/88.168"
    assert handle.suffix == "88.168"


def test_prefix_record_keeps_the_clients_spelling_of_0na() -> None:
    assert parse_handle("0.na/88.168").text == "0.na/88.168"
    assert parse_handle("88.168").text == "0.NA/88.168"


@given(prefixes)
def test_bare_prefix_means_its_prefix_record(prefix: str) -> None:
    assert parse_handle(prefix) == parse_handle(f"0.NA/{prefix}") == Handle("0.NA", prefix)


@pytest.mark.parametrize("text", ["88.168", "0.NA/88.168", "0.na/88.168", "hdl:88.168", " 88.168 "])
def test_parse_prefix_accepts_every_spelling(text: str) -> None:
    assert parse_prefix(text) == "88.168"


@pytest.mark.parametrize("text", ["88.168/X", "", "88..168", "hdl:"])
def test_parse_prefix_refuses_non_prefixes(text: str) -> None:
    with pytest.raises(InvalidHandle):
        parse_prefix(text)


def test_ancestors_and_is_within() -> None:
    assert ancestors("88.168.1") == ["88.168.1", "88.168", "88"]
    assert is_within("88.168.1", "88.168")
    assert is_within("88.168", "88.168")
    assert is_within("88.ABC.1", "88.abc")
    assert not is_within("88.1681", "88.168")
    assert not is_within("88.16", "88.168")


# --- scanned codes --------------------------------------------------------------------

CONSUMER = "http://127.0.0.1:8000/t/88.168.1/WARD-2024-000123"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("hdl:88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("HDL:88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("hdl://88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("doi:88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("  hdl:88.168.1/X\n", "88.168.1/X"),
        (CONSUMER, "88.168.1/WARD-2024-000123"),
        ("https://127.0.0.1:8000/t/88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("HTTP://127.0.0.1:8000/t/88.168.1/WARD-2024-000123", "88.168.1/WARD-2024-000123"),
        (CONSUMER + "?src=qr#top", "88.168.1/WARD-2024-000123"),
        ("http://127.0.0.1:8000/t/88.168.1/%E8%A1%A3%E6%9F%9C", "88.168.1/衣柜"),
        ("http://127.0.0.1:8000/t/88.168.1/A%2FB", "88.168.1/A/B"),
        ("http://127.0.0.1:8000/t/88.168.1/A+B", "88.168.1/A+B"),
        (
            "http://127.0.0.1:8101/api/handles/88.168.1/WARD-2024-000123",
            "88.168.1/WARD-2024-000123",
        ),
        ("http://127.0.0.1:8101/api/handles/88.168.1/WARD?index=1", "88.168.1/WARD"),
        ("http://127.0.0.1:8000/api/handles/0.NA/88.168", "0.NA/88.168"),
        ("http://127.0.0.1:8000/api/handles/0.NA/88.168.1", "0.NA/88.168.1"),
        ("http://127.0.0.1:8000/api/handles/88.168", "0.NA/88.168"),
        ("http://hdl.example.org/api/handles/20.500.12345/abc", "20.500.12345/abc"),
        ("88.168.1%2FWARD-2024-000123", "88.168.1/WARD-2024-000123"),
        ("hdl:88.168.1/X%20Y", "88.168.1/X Y"),
        ("88.168", "0.NA/88.168"),
    ],
)
def test_from_scan(code: str, expected: str) -> None:
    assert from_scan(code).text == expected


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("http://127.0.0.1:8000/", ["no identifier found in URL path"]),
        ("http://127.0.0.1:8000/t/WARD-2024-000123", ["no identifier found", "88.<node>"]),
        ("https://example.com/88.168.1", ["no identifier found"]),
        ("hdl:", ["empty"]),
        ("hdl:88.168.1/%00X", ["control character"]),
        ("88.168.1%2F", ["empty suffix"]),
    ],
)
def test_from_scan_refuses_codes_without_an_identifier(code: str, words: list[str]) -> None:
    with pytest.raises(InvalidHandle) as info:
        from_scan(code)
    for word in words:
        assert word in info.value.message, (word, info.value.message)


scan_suffixes = suffixes.filter(lambda s: s == s.strip() and "/" not in s)


@given(prefixes, scan_suffixes)
def test_from_scan_undoes_percent_encoding(prefix: str, suffix: str) -> None:
    assume(_fits(prefix, suffix))
    text = f"{prefix}/{suffix}"
    expected = parse_handle(text)
    assert from_scan(quote(text, safe="/")) == expected
    assert from_scan(quote(text, safe="")) == expected
    assert from_scan("hdl:" + quote(text, safe="/")) == expected
    if "%" not in text:
        assert from_scan(f"hdl:{text}") == expected


@given(idis_prefixes, scan_suffixes, st.sampled_from(["http", "https"]))
def test_from_scan_reads_consumer_and_api_urls(prefix: str, suffix: str, scheme: str) -> None:
    assume(_fits(prefix, suffix))
    encoded = quote(f"{prefix}/{suffix}", safe="/")
    expected = Handle(prefix, suffix)
    assert from_scan(f"{scheme}://127.0.0.1:8000/t/{encoded}") == expected
    assert from_scan(f"{scheme}://127.0.0.1:8101/api/handles/{encoded}") == expected
    assert from_scan(f"{scheme}://127.0.0.1:8000/t/{encoded}?from=label") == expected
