"""Identifier syntax: parse, validate and normalise handles, prefixes and scanned codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from idcore.errors import InvalidHandle

MAX_HANDLE_BYTES = 255
MAX_PREFIX_BYTES = 64
NA_PREFIX = "0.NA"

# A prefix is dot-separated segments; IDIS uses digits (88.168.1) but the Handle
# System allows letters too (0.NA, 20.500.12345), so accept both and let the node
# decide whether it homes the prefix.
_SEGMENT = re.compile(r"[0-9A-Za-z_-]+")
# C0, DEL and C1 (U+0080-U+009F): every Unicode control character (category Cc).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def fold(text: str) -> str:
    """Case-fold ASCII letters only: Handle matching is ASCII case-insensitive."""
    # str.upper() is 20x faster than translate() (a trace folds over a thousand times), and
    # for an ASCII-only text it changes exactly the ASCII letters; other text may hold
    # letters that upper() would change too (ß, é), so it goes through the table.
    return text.upper() if text.isascii() else text.translate(_ASCII_UPPER)


@dataclass(frozen=True, slots=True)
class Handle:
    """A parsed handle: prefix and suffix as the client spelled them."""

    prefix: str
    suffix: str

    @property
    def text(self) -> str:
        """The handle as written: `prefix/suffix`."""
        return f"{self.prefix}/{self.suffix}"

    @property
    def key(self) -> str:
        """The case-folded form used to store and look up the record."""
        return fold(self.text)

    @property
    def is_prefix_record(self) -> bool:
        """True for `0.NA/<prefix>`: the record of a prefix itself."""
        return fold(self.prefix) == fold(NA_PREFIX)

    @property
    def homed_prefix(self) -> str:
        """The prefix whose node homes this record (`0.NA/88.168.1` → `88.168.1`)."""
        return self.suffix if self.is_prefix_record else self.prefix

    def __str__(self) -> str:
        return self.text


def _check_text(text: str, what: str) -> None:
    if not text:
        raise InvalidHandle(f"{what} is empty: write it as 88.<node>.<enterprise>/<suffix>")
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidHandle(
            f"{what} {text!r} contains control character {bad.group()!r} at position "
            f"{bad.start()}: control characters are not allowed",
            handle=text,
        )


def validate_prefix(prefix: str) -> str:
    """Check a bare prefix such as `88.168.1`; return it unchanged."""
    _check_text(prefix, "prefix")
    if len(prefix.encode()) > MAX_PREFIX_BYTES:
        raise InvalidHandle(
            f"prefix {prefix[:80]!r} is {len(prefix.encode())} bytes: the limit is "
            f"{MAX_PREFIX_BYTES} bytes",
            handle=prefix,
        )
    for segment in prefix.split("."):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidHandle(
                f"prefix {prefix!r} has an invalid segment {segment!r}: segments are "
                "letters, digits, '-' or '_' separated by single dots (e.g. 88.168.1)",
                handle=prefix,
            )
    return prefix


# A request parses its identifier in several places (fault rules, the route, statistics)
# and a busy identifier is asked for again and again: Handles are immutable, so the
# parses are shared. Rejections are not cached; each raises anew.
@lru_cache(maxsize=16_384)
def parse_handle(text: str) -> Handle:
    """Parse `prefix/suffix`; a text without `/` names the prefix record `0.NA/<text>`."""
    _check_text(text, "handle")
    if "/" not in text:
        validate_prefix(text)
        return _checked_length(Handle(NA_PREFIX, text))
    prefix, suffix = text.split("/", 1)
    if not prefix:
        raise InvalidHandle(
            f"handle {text!r} has an empty prefix: write it as 88.<node>.<enterprise>/<suffix>",
            handle=text,
        )
    if not suffix:
        raise InvalidHandle(
            f"handle {text!r} has an empty suffix after '/': the suffix names the item",
            handle=text,
        )
    if fold(prefix) == fold(NA_PREFIX):
        validate_prefix(suffix)
        # Keep the client's spelling of 0.NA but store the canonical form.
        return _checked_length(Handle(prefix, suffix))
    validate_prefix(prefix)
    return _checked_length(Handle(prefix, suffix))


def _checked_length(handle: Handle) -> Handle:
    size = len(handle.text.encode())
    if size > MAX_HANDLE_BYTES:
        raise InvalidHandle(
            f"handle is {size} bytes: the limit is {MAX_HANDLE_BYTES} bytes (UTF-8)",
            handle=handle.text[:80],
        )
    return handle


def parse_prefix(text: str) -> str:
    """Accept `88.168`, `0.NA/88.168` or `hdl:88.168`; return the bare prefix."""
    text = text.strip()
    if text.lower().startswith("hdl:"):
        text = text[4:]
    if "/" in text:
        head, tail = text.split("/", 1)
        if fold(head) != fold(NA_PREFIX):
            raise InvalidHandle(
                f"{text!r} is not a prefix: write 88.168 or 0.NA/88.168", handle=text
            )
        text = tail
    return validate_prefix(text)


def from_scan(code: str) -> Handle:
    """Turn what a scanner delivers (`hdl:…`, a consumer URL, percent-encoding) into a handle."""
    text = code.strip()
    if not text:
        raise InvalidHandle("the scanned code is empty")
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        parts = urlsplit(text)
        text = _handle_in_path(unquote(parts.path))
    elif lowered.startswith("hdl:"):
        text = unquote(text[4:]).lstrip("/")
    elif lowered.startswith("doi:"):
        text = unquote(text[4:])
    else:
        text = unquote(text)
    return parse_handle(text)


def _handle_in_path(path: str) -> str:
    """Find `prefix/suffix` inside a URL path such as `/t/88.168.1/X` or `/api/handles/…`."""
    segments = [s for s in path.split("/") if s]
    for i in range(len(segments) - 2):
        # A Handle API URL: everything after /api/handles/ is the handle, including
        # `0.NA/88.168` and a bare prefix (`/api/handles/88.168`).
        if segments[i] == "api" and segments[i + 1] == "handles":
            return "/".join(segments[i + 2 :])
    for i, segment in enumerate(segments[:-1]):
        if _looks_like_prefix(segment):
            return "/".join(segments[i:])
    raise InvalidHandle(
        f"no identifier found in URL path {path!r}: expected …/88.<node>.<enterprise>/<suffix>",
        handle=path,
    )


def _looks_like_prefix(segment: str) -> bool:
    parts = segment.split(".")
    return len(parts) >= 2 and all(p.isdigit() for p in parts)


def ancestors(prefix: str) -> list[str]:
    """The prefix and every parent, longest first: `88.168.1` → 88.168.1, 88.168, 88."""
    parts = prefix.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def is_within(prefix: str, parent: str) -> bool:
    """True if `prefix` equals `parent` or is derived from it (segment-wise, case-folded)."""
    p, q = fold(prefix), fold(parent)
    return p == q or p.startswith(q + ".")
