"""Compact JWS with EdDSA (Ed25519, RFC 8037), written directly on `cryptography`.

A compact JWS is `BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature)` where
the signature covers the ASCII bytes of the first two parts (RFC 7515 §7.1). Only
`alg: EdDSA` is produced or accepted: a token naming any other algorithm (`none`
included) is refused before a key is looked at.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG = "EdDSA"


class JWSError(ValueError):
    """A token that is not a well-formed compact EdDSA JWS."""


class BadSignature(JWSError):
    """A well-formed token whose signature does not verify with the key given."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(raw: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return _b64url_bytes(raw).decode("ascii")


def _b64url_bytes(raw: bytes) -> bytes:
    # binascii directly: base64.urlsafe_b64encode is three Python calls, and a signed
    # record needs one of these per value.
    return binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_URLSAFE)


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; JWSError if it is not base64url."""
    if not isinstance(text, str) or any(c in text for c in "+/= \n"):
        raise JWSError("not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JWSError("not base64url text") from None


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII escapes (stable everywhere)."""
    return _CANONICAL.encode(obj).encode("ascii")


@dataclass(frozen=True, slots=True)
class Token:
    """A parsed compact JWS: header and payload (both JSON objects) and what was signed."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def kid(self) -> str:
        """The key id the header names ("" if none)."""
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else ""

    def verify(self, key: Ed25519PublicKey) -> None:
        """Raise BadSignature unless `key` signed this token."""
        try:
            key.verify(self.signature, self.signing_input)
        except InvalidSignature:
            raise BadSignature(f"the signature does not verify with key {self.kid!r}") from None


def sign(payload: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
    """A compact JWS of `payload` signed with `key`, header {alg: EdDSA, kid}."""
    return sign_canonical(canonical(payload), key, kid)


def sign_canonical(payload: bytes, key: Ed25519PrivateKey, kid: str) -> str:
    """`sign` for a payload already in canonical JSON bytes (see idcore.signing)."""
    signing_input = _header(kid) + b"." + _b64url_bytes(payload)
    return (signing_input + b"." + _b64url_bytes(key.sign(signing_input))).decode("ascii")


@functools.lru_cache(maxsize=64)
def _header(kid: str) -> bytes:
    # The same few kids sign every record: encode each header once.
    return _b64url_bytes(canonical({"alg": ALG, "kid": kid}))


def parse(token: str) -> Token:
    """Split and decode a compact JWS without verifying it; JWSError if malformed."""
    if not isinstance(token, str):
        raise JWSError("a JWS is a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWSError(f"a compact JWS has 3 dot-separated parts, this one has {len(parts)}")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise JWSError("the JWS header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JWSError("the JWS header and payload must be JSON objects")
    if header.get("alg") != ALG:
        raise JWSError(f"JWS algorithm {header.get('alg')!r} is not accepted: only {ALG}")
    if "crit" in header:
        raise JWSError("JWS header parameter 'crit' is not supported")
    signature = b64url_decode(parts[2])
    if len(signature) != 64:
        raise JWSError(f"an Ed25519 signature is 64 bytes, this one is {len(signature)}")
    return Token(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def verify(token: str, key: Ed25519PublicKey) -> dict[str, Any]:
    """The payload of a token signed by `key`; JWSError / BadSignature otherwise."""
    parsed = parse(token)
    parsed.verify(key)
    return parsed.payload
