"""Write credentials: HTTP Basic identities, salted secret hashes and their verification."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from idcore.errors import AuthenticationNeeded, InvalidCredential
from idcore.identifier import fold

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCHEME = "scrypt"
_KNOWN_SCHEMES = frozenset(
    ("bearer", "digest", "negotiate", "ntlm", "hoba", "mutual", "token", "aws4-hmac-sha256")
)


@dataclass(frozen=True, slots=True)
class Identity:
    """An admin identity: value `index` (HS_SECKEY) of `handle`, as in `300:88.168.1/ADMIN`."""

    index: int
    handle: str

    @property
    def key(self) -> str:
        """Case-folded handle for comparisons."""
        return fold(self.handle)

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An identity and the secret offered for it."""

    identity: Identity
    secret: str


def parse_identity(text: str) -> Identity:
    """Read `300:88.168.1/ADMIN` (also percent-encoded, `300%3A…`)."""
    text = unquote(text)
    index, sep, handle = text.partition(":")
    if not sep or not index.isdigit() or "/" not in handle:
        raise InvalidCredential(
            f"identity {text[:80]!r} is not of the form <index>:<prefix>/<suffix>, "
            "e.g. 300:88.168.1/ADMIN"
        )
    return Identity(int(index), handle)


def parse_basic(header: str | None) -> Credentials:
    """Read an `Authorization: Basic …` header as pyhandle sends it."""
    if not header:
        raise AuthenticationNeeded(
            "this operation needs credentials: HTTP Basic auth with user "
            "'300:<prefix>/ADMIN' and its secret"
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "basic" and not token.strip():
        raise InvalidCredential("the Basic credentials are empty: send base64('<user>:<secret>')")
    if scheme.lower() != "basic":
        # Name the scheme only if it is a known one: the header may be a bare secret.
        shown = repr(scheme) if scheme.lower() in _KNOWN_SCHEMES else "other than Basic"
        raise InvalidCredential(f"unsupported Authorization scheme {shown}: use HTTP Basic")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCredential("the Basic credentials are not valid base64 UTF-8") from None
    user, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidCredential("the Basic credentials lack the ':' between user and secret")
    if user.isdigit():
        # `300:88.168.1/ADMIN:secret` (identity not percent-encoded): the identity
        # runs to the second ':' and the secret is the rest.
        handle, sep, rest = secret.partition(":")
        if sep and "/" in handle:
            user, secret = f"{user}:{handle}", rest
    return Credentials(parse_identity(user), secret)


def basic_header(identity: str, secret: str) -> str:
    """The Authorization header value for an identity and secret (pyhandle's `300%3A…` form)."""
    user = identity.replace(":", "%3A")
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return f"Basic {token}"


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of a secret; only this is ever stored."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    parts = (_SCHEME, str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P))
    return "$".join((*parts, salt.hex(), digest.hex()))


def is_hashed(text: str) -> bool:
    """True if the text is a hash made by hash_secret."""
    return text.startswith(_SCHEME + "$") and text.count("$") == 5


class SecretVerifier:
    """Checks secrets against stored hashes, remembering recent successes.

    scrypt is deliberately slow (tens of ms); remembering a success keyed by the
    stored hash keeps repeated writes fast, and a changed hash forgets it.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._pepper = os.urandom(32)
        self._ok: dict[tuple[str, bytes], None] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def verify(self, secret: str, stored: str) -> bool:
        """True if the secret matches the stored hash."""
        token = (stored, hmac.digest(self._pepper, secret.encode(), "sha256"))
        with self._lock:
            if token in self._ok:
                return True
        if not _verify(secret, stored):
            return False
        with self._lock:
            if len(self._ok) >= self._capacity:
                self._ok.pop(next(iter(self._ok)))
            self._ok[token] = None
        return True


def _verify(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        computed = hashlib.scrypt(
            secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


class FailureThrottle:
    """Counts failed logins per client address and slows a guesser down.

    After `max_failures` failures from one address within `window` seconds, that
    address is refused (the caller answers 503 with Retry-After) until its oldest
    counted failure ages out. Per process and bounded: at most `max_clients`
    addresses are remembered (the least recently failing is forgotten first), each
    with at most `max_failures` timestamps.
    """

    def __init__(
        self,
        max_failures: int = 10,
        window: float = 60.0,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str | None) -> float:
        """Seconds until `client` may try again; 0 if it may try now."""
        if client is None:
            return 0.0
        now = self._clock()
        with self._lock:
            stamps = self._failures.get(client)
            if stamps is None:
                return 0.0
            while stamps and stamps[0] <= now - self.window:
                stamps.popleft()
            if not stamps:
                del self._failures[client]
                return 0.0
            if len(stamps) < self.max_failures:
                return 0.0
            return max(stamps[0] + self.window - now, 0.001)

    def failed(self, client: str | None) -> int:
        """Count one failure of `client`; the number of failures now in its window."""
        if client is None:
            return 0
        now = self._clock()
        with self._lock:
            stamps = self._failures.pop(client, None)
            if stamps is None:
                stamps = deque(maxlen=self.max_failures)
            while stamps and stamps[0] <= now - self.window:
                stamps.popleft()
            stamps.append(now)
            self._failures[client] = stamps  # most recent last
            while len(self._failures) > self._max_clients:
                self._failures.popitem(last=False)
            return len(stamps)

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)
