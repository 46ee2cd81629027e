"""Signing keys: one Ed25519 key ring per node, kept in files under the node's keys directory.

`<keys dir>/<owner>/` (by default `<data dir>/keys/<owner>/`, also with the Redis store)
holds, per key, `ed25519-<kid>.pem` (PKCS#8, file mode 0600) and two public files:
`keyring.json` (which key is current, which are retired) and `public.json` (the JWK set,
current key first). Rotation makes a new current key and keeps the old ones as retired:
they sign nothing new, but records they signed stay verifiable until re-signed.

The key id is the key's fingerprint: the base64url SHA-256 of the raw 32-byte public key
(`SHA256:<43 chars>`, as OpenSSH prints one), of which the kid is the first 16 characters.

Creating and rotating hold an exclusive `flock` on the directory's `.lock`, so two
processes starting at once (a top-level node reading a secondary node's public key while
that node creates it) end up with the same key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from idcore.jws import ALG, b64url, b64url_decode
from idcore.values import now_iso

KID_LENGTH = 16
PRIVATE_MODE = 0o600
RING_FILE = "keyring.json"
PUBLIC_FILE = "public.json"
LOCK_FILE = ".lock"


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """`SHA256:<base64url of the SHA-256 of the raw public key>`."""
    return "SHA256:" + b64url(hashlib.sha256(raw_public(key)).digest())


def kid_of(key: Ed25519PublicKey) -> str:
    """The key id: the first 16 characters of the fingerprint's digest."""
    return fingerprint(key)[len("SHA256:") :][:KID_LENGTH]


def public_jwk(key: Ed25519PublicKey, status: str = "current") -> dict[str, Any]:
    """The public key as a JWK (RFC 8037 OKP), with its kid and whether it is current."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(raw_public(key)),
        "kid": kid_of(key),
        "alg": ALG,
        "use": "sig",
        "status": status,
    }


def key_from_jwk(jwk: Any) -> Ed25519PublicKey:
    """The public key of an Ed25519 JWK; ValueError if it is not one or its kid is wrong."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 JWK (kty OKP, crv Ed25519)")
    try:
        raw = b64url_decode(str(jwk.get("x", "")))
    except ValueError:
        raise ValueError("the JWK's x is not base64url") from None
    if len(raw) != 32:
        raise ValueError(f"the JWK's x is {len(raw)} bytes: an Ed25519 key is 32")
    key = Ed25519PublicKey.from_public_bytes(raw)
    # The kid names the key: one that does not match would let a key pose as another.
    if jwk.get("kid") is not None and jwk.get("kid") != kid_of(key):
        raise ValueError(f"JWK kid {jwk.get('kid')!r} is not this key's ({kid_of(key)})")
    return key


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One private key of a ring, with its id."""

    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        """Its public half."""
        return self.private.public_key()


@dataclass(frozen=True, slots=True)
class KeyRing:
    """A node's keys: the current one signs, retired ones stay published for verification."""

    directory: Path
    owner: str
    current: SigningKey
    retired: tuple[SigningKey, ...]

    @property
    def ring_file(self) -> Path:
        """keyring.json: changes when the ring is rotated."""
        return self.directory / RING_FILE

    def keys(self) -> list[SigningKey]:
        """Every key, current first."""
        return [self.current, *self.retired]

    def public_jwks(self) -> list[dict[str, Any]]:
        """The public keys as JWKs, current first."""
        return [public_jwk(self.current.public, "current")] + [
            public_jwk(k.public, "retired") for k in self.retired
        ]

    def kids(self) -> list[str]:
        """Every key id, current first."""
        return [k.kid for k in self.keys()]

    @classmethod
    def open(cls, keys_dir: Path, owner: str, *, create: bool = True) -> KeyRing:
        """The ring of `owner` under `keys_dir`, created with a fresh key if it has none."""
        directory = Path(keys_dir) / owner
        if not (directory / RING_FILE).exists():
            if not create:
                raise FileNotFoundError(f"no key ring for {owner!r} under {keys_dir}")
            with _locked(directory):
                if not (directory / RING_FILE).exists():
                    _write_ring(directory, owner, _new_key(directory), [])
        return cls._load(directory, owner)

    def rotate(self) -> KeyRing:
        """Make a new current key; the old current one becomes the newest retired key."""
        with _locked(self.directory):
            ring = KeyRing._load(self.directory, self.owner)  # another process may have rotated
            fresh = _new_key(self.directory)
            _write_ring(self.directory, self.owner, fresh, [ring.current, *ring.retired])
        return KeyRing._load(self.directory, self.owner)

    @classmethod
    def _load(cls, directory: Path, owner: str) -> KeyRing:
        try:
            meta = json.loads((directory / RING_FILE).read_text("utf-8"))
            current = _read_key(directory, str(meta["current"]))
            retired = tuple(_read_key(directory, str(k)) for k in meta.get("retired", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"key ring {directory} is unreadable: {exc}") from None
        return cls(directory, owner, current, retired)


def published_jwks(keys_dir: Path, owner: str) -> list[dict[str, Any]]:
    """The public keys of `owner` (public.json), its ring created first if it has none.

    Another node's keys are read from the public file only: its private keys stay unread.
    """
    path = Path(keys_dir) / owner / PUBLIC_FILE
    if not path.exists():
        return KeyRing.open(keys_dir, owner).public_jwks()
    try:
        keys = json.loads(path.read_text("utf-8"))["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is unreadable: {exc}") from None
    return [dict(k) for k in keys]


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (directory / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _new_key(directory: Path) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = kid_of(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / f"ed25519-{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return SigningKey(kid, private)


def _read_key(directory: Path, kid: str) -> SigningKey:
    if not kid.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"bad kid {kid!r}")
    pem = (directory / f"ed25519-{kid}.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"ed25519-{kid}.pem is not an Ed25519 key")
    if kid_of(private.public_key()) != kid:
        raise ValueError(f"ed25519-{kid}.pem holds key {kid_of(private.public_key())}")
    return SigningKey(kid, private)


def _write_ring(
    directory: Path, owner: str, current: SigningKey, retired: list[SigningKey]
) -> None:
    ring = {
        "owner": owner,
        "current": current.kid,
        "retired": [k.kid for k in retired],
        "updated": now_iso(),
    }
    jwks = {
        "keys": [public_jwk(current.public, "current")]
        + [public_jwk(k.public, "retired") for k in retired]
    }
    # public.json first: a reader that sees the new ring finds the new public set too.
    _replace(directory / PUBLIC_FILE, json.dumps(jwks, indent=2))
    _replace(directory / RING_FILE, json.dumps(ring, indent=2))


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", "utf-8")
    os.replace(tmp, path)
