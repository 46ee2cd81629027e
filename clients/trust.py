"""Trusted resolution: check a record along the chain from a pinned key, and pin that key.

The chain (DESIGN.md §6): the client pins the top-level node's public key (the anchor,
`idr trust fetch`). A record's HS_SIGNATURE names its signer's key (`kid`) and prefix;
the key must be among the HS_PUBKEY values of the prefix record `0.NA/<prefix>`, itself
signed by the anchor (fetched through the top-level node and checked the same way,
recursively), and the prefix must cover the record's handle: a key delegated for 88.169
signs nothing under 88.168. Then the signature must verify and every value must match
its digest. Verdicts:

- trusted: all of that holds;
- untrusted, with the reason: digest mismatch (a value changed, added or removed after
  signing, e.g. in the store), bad signature, key not delegated for this prefix, anchor
  mismatch (signed by a key the pin does not hold), malformed signature, signed for
  another handle;
- unknown: the record carries no signature, no anchor is pinned, or the prefix record
  could not be fetched.

Verified prefix keys are cached (`ttl`); a key id missing from the cache is looked up
once more, fresh, before the record is called untrusted (the node may have rotated).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clients.cache import TTLCache
from idcore.errors import HandleError, HandleNotFound, InvalidHandle
from idcore.identifier import NA_PREFIX, fold, is_within, parse_handle, validate_prefix
from idcore.jws import BadSignature, JWSError, Token
from idcore.keys import fingerprint, key_from_jwk, kid_of
from idcore.signing import digest_problems, parse_signature, pubkeys_of, signature_values
from idcore.values import now_iso

if TYPE_CHECKING:
    from clients.resolver import Resolver

Status = Literal["trusted", "untrusted", "unknown"]
TRUSTED: Status = "trusted"
UNTRUSTED: Status = "untrusted"
UNKNOWN: Status = "unknown"

DIGEST_MISMATCH = "digest mismatch"
BAD_SIGNATURE = "bad signature"
NOT_DELEGATED = "key not delegated for this prefix"
ANCHOR_MISMATCH = "anchor mismatch"
MALFORMED = "malformed signature"
WRONG_HANDLE = "signed for another handle"
NO_SIGNATURE = "no signature"
NO_ANCHOR = "no trust anchor pinned"
UNAVAILABLE = "prefix record unavailable"

ANCHOR_ENV = "IDR_TRUST_ANCHOR"
ANCHOR_FILE = "anchor.json"
MAX_CHAIN = 8

PrefixFetch = Callable[[str, bool], list[dict[str, Any]]]
"""Fetch the values of a prefix record `0.NA/<prefix>` (handle, fresh) through the top."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """How far a record can be trusted, and why."""

    status: Status
    reason: str | None = None
    detail: str | None = None
    issuer: str | None = None
    kid: str | None = None
    prefix: str | None = None
    signed_at: int | None = None

    @property
    def trusted(self) -> bool:
        """True only for a fully checked record."""
        return self.status == TRUSTED

    def __str__(self) -> str:
        if self.trusted:
            return f"trusted (signed by {self.issuer} for {self.prefix}, key {self.kid})"
        text = f"{self.status}: {self.reason}" if self.reason else self.status
        return f"{text} ({self.detail})" if self.detail else text

    def to_json(self) -> dict[str, Any]:
        """The verdict as JSON (the `trust` member of traces and `idr resolve --json`)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "issuer": self.issuer,
            "kid": self.kid,
            "prefix": self.prefix,
            "signedAt": self.signed_at,
        }


def summarize(verdicts: Sequence[Verdict | None]) -> dict[str, int]:
    """How many records are trusted, untrusted and unknown."""
    counts: dict[str, int] = {TRUSTED: 0, UNTRUSTED: 0, UNKNOWN: 0}
    for verdict in verdicts:
        counts[verdict.status if verdict is not None else UNKNOWN] += 1
    return counts


# -- the anchor ----------------------------------------------------------------------------


class AnchorError(Exception):
    """The anchor cannot be established (not signed by its own key, unreadable, ...)."""


class AnchorChanged(AnchorError):
    """The top-level node presents keys that no pinned key vouches for."""


@dataclass
class Anchor:
    """The pinned top-level key(s): the prefix they speak for and the JWKs, current first."""

    prefix: str
    keys: list[dict[str, Any]]
    source: str | None = None
    fetched_at: str | None = None
    _public: dict[str, Ed25519PublicKey] = field(default_factory=dict, repr=False, init=False)

    def __post_init__(self) -> None:
        for jwk in self.keys:
            key = key_from_jwk(jwk)  # ValueError for anything but a sound Ed25519 JWK
            self._public[kid_of(key)] = key

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Key id → public key."""
        return dict(self._public)

    @property
    def current_kid(self) -> str:
        """The key id of the first (current) key."""
        return next(iter(self._public), "")

    def fingerprints(self) -> list[tuple[str, str, str]]:
        """(kid, SHA256 fingerprint, status) per key, current first."""
        statuses = [str(j.get("status", "")) for j in self.keys]
        return [
            (kid, fingerprint(key), status)
            for (kid, key), status in zip(self._public.items(), statuses, strict=False)
        ]

    def to_json(self) -> dict[str, Any]:
        """The anchor file's content."""
        return {
            "prefix": self.prefix,
            "keys": self.keys,
            "source": self.source,
            "fetchedAt": self.fetched_at,
        }

    @classmethod
    def load(cls, path: Path) -> Anchor:
        """Read a pinned anchor; FileNotFoundError if none, AnchorError if unreadable."""
        try:
            raw = json.loads(Path(path).read_text("utf-8"))
            return cls(
                str(raw["prefix"]), list(raw["keys"]), raw.get("source"), raw.get("fetchedAt")
            )
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AnchorError(f"the pinned anchor {path} is unreadable: {exc}") from None

    def save(self, path: Path) -> None:
        """Write the anchor file (its directory created if needed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", "utf-8")
        os.replace(tmp, path)


def default_anchor_path(data_dir: Path | None = None) -> Path:
    """$IDR_TRUST_ANCHOR, else `<data dir>/anchor.json` when one is named, else
    `$XDG_CONFIG_HOME/idr/anchor.json` (~/.config/idr/anchor.json)."""
    named = os.environ.get(ANCHOR_ENV)
    if named:
        return Path(named)
    if data_dir is not None:
        return Path(data_dir) / ANCHOR_FILE
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "idr" / ANCHOR_FILE


def anchor_from_record(
    prefix: str, values: list[dict[str, Any]], pinned: Anchor | None, source: str | None = None
) -> Anchor:
    """The anchor a top-level prefix record establishes, checked against the pinned one.

    The record must be signed by its own current key. With a pin, one of its signatures
    must also verify with a pinned key: the node counter-signs with its retired keys, so
    a rotation is accepted and a swapped key is refused (AnchorChanged).
    """
    offered = pubkeys_of(values)
    if not offered:
        raise AnchorError(f"{NA_PREFIX}/{prefix} publishes no HS_PUBKEY")
    try:
        candidate = Anchor(prefix, offered, source, now_iso())
    except ValueError as exc:
        raise AnchorError(f"{NA_PREFIX}/{prefix} publishes a bad key: {exc}") from None
    handle = f"{NA_PREFIX}/{prefix}"
    own = Verifier(candidate, _no_fetch).check(handle, values)
    if not own.trusted or own.kid != candidate.current_kid:
        raise AnchorError(f"{handle} is not signed by its own current key: {own}")
    if pinned is None:
        return candidate
    if fold(pinned.prefix) != fold(prefix):
        raise AnchorChanged(
            f"the pinned anchor speaks for prefix {pinned.prefix}, this node for {prefix}"
        )
    vouched = Verifier(pinned, _no_fetch).check(handle, values)
    if not vouched.trusted:
        raise AnchorChanged(
            f"the top-level key is now {candidate.current_kid} ({fingerprint_of(candidate)}), "
            f"and no pinned key ({', '.join(pinned.public_keys)}) signed it: {vouched}"
        )
    return candidate


def fingerprint_of(anchor: Anchor) -> str:
    """The fingerprint of an anchor's current key."""
    return anchor.fingerprints()[0][1] if anchor.keys else "-"


def fetch_anchor_record(
    urls: Sequence[str], timeout: float = 3.0, session: requests.Session | None = None
) -> tuple[str, list[dict[str, Any]], str]:
    """(prefix, values, url) of `GET /api/trust/anchor` from the first node that answers."""
    failures = []
    own = session or requests.Session()
    try:
        for url in urls:
            base = url.rstrip("/")
            try:
                resp = own.get(f"{base}/api/trust/anchor", timeout=timeout)
                body = resp.json()
                if resp.status_code == 200 and body.get("responseCode") == 1:
                    return str(body["prefix"]), list(body["values"]), base
                failures.append(f"{base}: HTTP {resp.status_code} {body.get('message', '')}")
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                failures.append(f"{base}: {type(exc).__name__}")
    finally:
        if session is None:
            own.close()
    raise AnchorError("no top-level node gave its trust anchor: " + "; ".join(failures))


def _no_fetch(handle: str, fresh: bool) -> list[dict[str, Any]]:
    raise HandleNotFound(f"{handle}: only the anchor itself is checked here", handle=handle)


# -- checking records ----------------------------------------------------------------------


class Verifier:
    """Checks records along the chain from an anchor; caches verified prefix keys."""

    def __init__(
        self,
        anchor: Anchor | None,
        fetch: PrefixFetch,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.anchor = anchor
        self.fetch = fetch
        self.ttl = ttl
        # Verified prefix keys (or why a prefix has none), by prefix; thread-safe.
        self._keys: TTLCache[dict[str, Ed25519PublicKey] | Verdict] = TTLCache(4096, clock)
        # Signatures that verified: an Ed25519 check is a pure function of key, message and
        # signature, and the costliest step of checking a record seen before.
        self._good: TTLCache[bool] = TTLCache(65_536, clock)
        # Parsed signatures by their text: decoding a JWS is pure, and half of checking.
        self._tokens: TTLCache[Token] = TTLCache(65_536, clock)

    @classmethod
    def for_resolver(cls, resolver: Resolver, anchor: Anchor | None = None) -> Verifier:
        """A verifier that fetches prefix records through `resolver` (anchor: the pinned one)."""
        if anchor is None:
            try:
                anchor = Anchor.load(default_anchor_path())
            except (FileNotFoundError, AnchorError):
                anchor = None

        def fetch(handle: str, fresh: bool) -> list[dict[str, Any]]:
            # Through the cache, without verifying: the verifier checks what it fetches.
            return resolver._record(parse_handle(handle), fresh).values

        return cls(anchor, fetch)

    def check(self, handle: str, values: Sequence[dict[str, Any]]) -> Verdict:
        """The verdict on a record: its handle and every public value, as resolved."""
        return self._check(handle, list(values), 0)

    def forget(self) -> None:
        """Drop every cached prefix key, parsed and verified signature."""
        self._keys.clear()
        self._good.clear()
        self._tokens.clear()

    def _check(self, handle: str, values: list[dict[str, Any]], depth: int) -> Verdict:
        signatures = signature_values(values)
        if not signatures:
            return Verdict(UNKNOWN, NO_SIGNATURE, f"{handle} carries no HS_SIGNATURE")
        if self.anchor is None:
            return Verdict(UNKNOWN, NO_ANCHOR, "run `idr trust fetch` to pin the top-level key")
        failures = []
        for value in signatures:
            verdict = self._one(handle, values, value, depth)
            if verdict.trusted:
                return verdict
            failures.append(verdict)
        return failures[0]

    def _one(
        self, handle: str, values: list[dict[str, Any]], value: dict[str, Any], depth: int
    ) -> Verdict:
        try:
            token = self._token(value)
            parsed = parse_handle(handle)
            prefix = validate_prefix(token.payload["prefix"])
        except (JWSError, InvalidHandle) as exc:
            return Verdict(UNTRUSTED, MALFORMED, f"index {value.get('index')}: {exc}")
        payload = token.payload
        iat = payload.get("iat")
        issuer = str(payload.get("iss"))

        def said(status: Status, reason: str | None = None, detail: str | None = None) -> Verdict:
            signed_at = iat if type(iat) is int else None
            return Verdict(status, reason, detail, issuer, token.kid, prefix, signed_at)

        if fold(payload["sub"]) != fold(parsed.text):
            return said(UNTRUSTED, WRONG_HANDLE, f"the signature is for {payload['sub']!r}")
        anchor = self.anchor
        assert anchor is not None
        if not is_within(parsed.homed_prefix, prefix) or not is_within(prefix, anchor.prefix):
            return said(
                UNTRUSTED,
                NOT_DELEGATED,
                f"key {token.kid} of {issuer} speaks for {prefix}, not for {parsed.homed_prefix}",
            )
        is_anchor = fold(prefix) == fold(anchor.prefix)
        if parsed.is_prefix_record and fold(parsed.suffix) == fold(prefix) and not is_anchor:
            return said(UNTRUSTED, NOT_DELEGATED, f"{handle} cannot vouch for its own key")
        keys = self._prefix_keys(prefix, depth, fresh=False)
        if isinstance(keys, dict) and token.kid not in keys and not is_anchor:
            keys = self._prefix_keys(prefix, depth, fresh=True)  # rotated since cached?
        if isinstance(keys, Verdict):
            return said(keys.status, keys.reason, keys.detail)
        key = keys.get(token.kid)
        if key is None:
            if is_anchor:
                return said(
                    UNTRUSTED,
                    ANCHOR_MISMATCH,
                    f"signed with key {token.kid}; the pinned anchor holds "
                    f"{', '.join(keys) or 'none'}",
                )
            return said(
                UNTRUSTED,
                NOT_DELEGATED,
                f"key {token.kid} is not among the keys {NA_PREFIX}/{prefix} delegates "
                f"({', '.join(keys) or 'none'})",
            )
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        seen = hashlib.sha256(raw + token.signature + token.signing_input).hexdigest()
        if self._good.get(seen) is None:
            try:
                token.verify(key)
            except BadSignature as exc:
                return said(UNTRUSTED, BAD_SIGNATURE, str(exc))
            self._good.put(seen, True, self.ttl)
        problems = digest_problems(payload, values)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            return said(UNTRUSTED, DIGEST_MISMATCH, "; ".join(problems[:3]) + more)
        return said(TRUSTED)

    def _token(self, value: dict[str, Any]) -> Token:
        """The parsed JWS of an HS_SIGNATURE value, from the cache when seen before."""
        data = value.get("data")
        text = data.get("value") if isinstance(data, dict) else data
        if not isinstance(text, str):
            return parse_signature(value)  # raises the error that names the problem
        token = self._tokens.get(text)
        if token is None:
            token = parse_signature(value)
            self._tokens.put(text, token, self.ttl)
        return token

    def _prefix_keys(
        self, prefix: str, depth: int, fresh: bool
    ) -> dict[str, Ed25519PublicKey] | Verdict:
        anchor = self.anchor
        assert anchor is not None
        if fold(prefix) == fold(anchor.prefix):
            return anchor.public_keys
        cache_key = fold(prefix)
        if not fresh:
            cached = self._keys.get(cache_key)
            if cached is not None:
                return cached
        handle = f"{NA_PREFIX}/{prefix}"
        if depth >= MAX_CHAIN:
            return Verdict(UNTRUSTED, MALFORMED, f"delegation chain to {handle} is too long")
        try:
            values = self.fetch(handle, fresh)
        except HandleNotFound:
            found: dict[str, Ed25519PublicKey] | Verdict = Verdict(
                UNTRUSTED, NOT_DELEGATED, f"{handle} does not exist: no key is delegated"
            )
            self._keys.put(cache_key, found, 5.0)
            return found
        except HandleError as exc:
            return Verdict(UNKNOWN, UNAVAILABLE, f"{handle}: {exc.message}")
        verdict = self._check(handle, values, depth + 1)
        if not verdict.trusted:
            found = Verdict(
                verdict.status, verdict.reason, f"its delegation {handle}: {verdict.detail}"
            )
            if verdict.status == UNTRUSTED:
                self._keys.put(cache_key, found, 5.0)
            return found
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in pubkeys_of(values):
            try:
                keys[str(jwk["kid"])] = key_from_jwk(jwk)
            except (ValueError, KeyError):
                continue  # a malformed key delegates nothing
        self._keys.put(cache_key, keys, self.ttl)
        return keys


def verifier_for(top: Sequence[str], anchor: Anchor | None, timeout: float = 3.0) -> Verifier:
    """A verifier with its own resolver (recursive, through `top`) for prefix records."""
    from clients.resolver import Resolver

    return Verifier.for_resolver(Resolver(top, timeout=timeout), anchor)
