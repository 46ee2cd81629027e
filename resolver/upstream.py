"""Recursion: resolve at the secondary node that homes a prefix, caching by TTL."""

from __future__ import annotations

import http.client
import math
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import requests

from clients.cache import TTLCache, record_ttl
from idcore import jsontext
from idcore.errors import (
    HandleError,
    HandleNotFound,
    NodeTimeout,
    NodeUnreachable,
    ServerError,
    error_for_code,
)
from idcore.identifier import Handle
from resolver.connections import Connections, Sent

_NOT_FOUND: list[dict[str, Any]] = []
MULTI_GET_HANDLES = 50
"""Identifiers per multi-get: well inside the node's limit and gunicorn's request line."""


class UpstreamGatewayError(NodeUnreachable):
    """The secondary node could not be reached (HTTP 502)."""

    @property
    def http_status(self) -> int:
        """Gateway semantics: the top-level node is fine, the node behind it is not."""
        return 502


class UpstreamTimeout(NodeTimeout):
    """The secondary node did not answer in time (HTTP 504)."""

    @property
    def http_status(self) -> int:
        """Gateway timeout."""
        return 504


class Upstream:
    """Fetches whole records from secondary nodes and caches answers (negative ones briefly)."""

    def __init__(self, *, timeout: float, negative_ttl: float, capacity: int) -> None:
        self.timeout = timeout
        self.negative_ttl = negative_ttl
        self.cache: TTLCache[list[dict[str, Any]]] = TTLCache(capacity)
        # Plain connections carry the traffic; the session stays for adapters that tests
        # and in-process hierarchies mount per node, and for https.
        self.connections = Connections()
        self.session = requests.Session()
        self._adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=64)
        self.session.mount("http://", self._adapter)
        self.session.mount("https://", requests.adapters.HTTPAdapter())

    def fetch(self, base_url: str, handle: Handle, fresh: bool = False) -> list[dict[str, Any]]:
        """All public values of a record at its home node; HandleNotFound if it has none."""
        if not fresh:
            cached = self._cached(handle)
            if cached is not None:
                return cached
        # Percent-encode: a suffix may hold '?', '#', '%' or spaces (the node decodes it).
        url = f"{base_url}/api/handles/{quote(handle.text, safe='/')}"
        status, body = self._request(base_url, url, handle.text)
        return self._keep(handle, self._answer(base_url, handle.text, status, body))

    def fetch_many(
        self, base_url: str, handles: Sequence[Handle]
    ) -> list[list[dict[str, Any]] | HandleError]:
        """Several records of one node, in order: their values or the error each would raise.

        Cached answers are used; the rest are asked for in multi-gets of at most
        MULTI_GET_HANDLES identifiers. An error of the request itself (timeout, node
        unreachable) is raised; a node without the multi-get route is asked one by one.
        """
        out, missing = self._from_cache(handles)
        for start in range(0, len(missing), MULTI_GET_HANDLES):
            chunk = missing[start : start + MULTI_GET_HANDLES]
            url = _multi_get_url(base_url, handles, chunk)
            status, body = self._request(base_url, url, handles[chunk[0]].text, lenient=True)
            self._land(base_url, handles, chunk, status, body, out)
        return [r for r in out if r is not None]

    def start_many(self, base_url: str, handles: Sequence[Handle]) -> PendingMany:
        """fetch_many, sent now and read later, when its socket is readable (this thread).

        A trace waits on many of these at once in one thread (clients/tracer.py) instead of
        handing each to a thread of its own. Cached answers, more than one multi-get's
        worth, or a node reached through a mounted adapter: fetched at once instead.
        """
        out, missing = self._from_cache(handles)
        if not missing:
            return PendingMany.done([r for r in out if r is not None])
        url = _multi_get_url(base_url, handles, missing)
        if len(missing) > MULTI_GET_HANDLES or self.session.get_adapter(url) is not self._adapter:
            return PendingMany.done(self.fetch_many(base_url, handles))
        text = handles[missing[0]].text
        try:
            sent = self.connections.start(url, self.timeout)
        except Exception as exc:
            raise self._failure(exc, base_url, text) from None

        def finish() -> list[list[dict[str, Any]] | HandleError]:
            try:
                status, raw = sent.finish()
            except Exception as exc:
                raise self._failure(exc, base_url, text) from None
            status, body = self._decode(base_url, text, status, raw, lenient=True)
            self._land(base_url, handles, missing, status, body, out)
            return [r for r in out if r is not None]

        def expire() -> HandleError:
            sent.abandon()
            return self._late(base_url, text)

        return PendingMany(sent, finish, expire, time.monotonic() + self.timeout)

    def _from_cache(
        self, handles: Sequence[Handle]
    ) -> tuple[list[list[dict[str, Any]] | HandleError | None], list[int]]:
        """Cached answers in place (None where there is none) and the positions missing."""
        out: list[list[dict[str, Any]] | HandleError | None] = []
        missing: list[int] = []
        for i, handle in enumerate(handles):
            try:
                out.append(self._cached(handle))
            except HandleNotFound as exc:
                out.append(exc)
            if out[-1] is None:
                missing.append(i)
        return out, missing

    def _land(
        self,
        base_url: str,
        handles: Sequence[Handle],
        chunk: list[int],
        status: int,
        body: dict[str, Any],
        out: list[list[dict[str, Any]] | HandleError | None],
    ) -> None:
        """Put a multi-get's answer for `chunk` (positions in handles) into `out`."""
        items = body.get("results")
        if status in (404, 405) and not isinstance(items, list):
            for i in chunk:  # a node without the route (not this emulator's)
                out[i] = self._one(base_url, handles[i])
            return
        if status != 200 or not isinstance(items, list) or len(items) != len(chunk):
            raise ServerError(
                f"node {base_url} answered a multi-get with HTTP {status}",
                handle=handles[chunk[0]].text,
            )
        for i, item in zip(chunk, items, strict=True):
            out[i] = self._item(base_url, handles[i], item)

    def _one(self, base_url: str, handle: Handle) -> list[dict[str, Any]] | HandleError:
        try:
            return self.fetch(base_url, handle, fresh=True)
        except HandleError as exc:
            return exc

    def _item(self, base_url: str, handle: Handle, item: Any) -> list[dict[str, Any]] | HandleError:
        """One result of a multi-get, as the same identifier's own GET would have ended."""
        try:
            if not isinstance(item, dict):
                raise ServerError(f"node {base_url} answered a multi-get item without JSON")
            if item.get("dropped"):
                raise UpstreamGatewayError(
                    f"node {base_url} dropped the connection", url=base_url, handle=handle.text
                )
            status = item.get("status")
            answer = self._answer(
                base_url, handle.text, status if isinstance(status, int) else 502, item
            )
            return self._keep(handle, answer)
        except HandleError as exc:
            return exc

    def _cached(self, handle: Handle) -> list[dict[str, Any]] | None:
        """The cached values; HandleNotFound for a cached miss; None if nothing is cached."""
        cached = self.cache.get(handle.key)
        if cached is _NOT_FOUND:
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        return cached

    def _keep(self, handle: Handle, values: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """Cache an answer (a miss briefly); HandleNotFound for a miss."""
        if values is None:
            self.cache.put(handle.key, _NOT_FOUND, self.negative_ttl)
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        self.cache.put(handle.key, values, record_ttl(values))
        return values

    def _request(
        self, base_url: str, url: str, text: str, lenient: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """Status and JSON object of a GET; the gateway errors for what went wrong.

        `lenient`: a 404 or 405 without JSON (a server without the route) gives {}.
        """
        try:
            status, raw = self._send(url)
        except Exception as exc:
            raise self._failure(exc, base_url, text) from None
        return self._decode(base_url, text, status, raw, lenient)

    def _failure(self, exc: Exception, base_url: str, text: str) -> Exception:
        """The gateway error for a request that failed, or `exc` itself if it is no such."""
        if isinstance(exc, TimeoutError | requests.Timeout):
            return self._late(base_url, text)
        if isinstance(exc, OSError | http.client.HTTPException | requests.RequestException):
            return UpstreamGatewayError(
                f"node {base_url} is unreachable: {type(exc).__name__}", url=base_url, handle=text
            )
        return exc

    def _late(self, base_url: str, text: str) -> UpstreamTimeout:
        """The error of a request the node did not answer within the timeout."""
        return UpstreamTimeout(
            f"node {base_url} did not answer within {self.timeout}s", url=base_url, handle=text
        )

    def _decode(
        self, base_url: str, text: str, status: int, raw: bytes, lenient: bool
    ) -> tuple[int, dict[str, Any]]:
        """The JSON object of an answer; ServerError if it has none (see _request)."""
        try:
            body = jsontext.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if lenient and status in (404, 405):
                return status, {}
            raise ServerError(
                f"node {base_url} answered HTTP {status} without Handle JSON", handle=text
            )
        return status, body

    def _answer(
        self, base_url: str, text: str, status: int, body: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """The values of a resolve answer; None for not found; the Handle error otherwise."""
        try:
            code = int(body.get("responseCode", 2))
        except (TypeError, ValueError):
            raise ServerError(
                f"node {base_url} answered without a responseCode", handle=text
            ) from None
        if code in (1, 200) and status == 200:
            values: list[dict[str, Any]] = body.get("values", [])
            return values
        if code == 100:
            return None
        if status >= 500:
            # The top-level node is fine; the node behind it failed: say so with a 502 so
            # clients do not count it against this node.
            raise UpstreamGatewayError(
                f"node {base_url} failed: HTTP {status} responseCode {code} "
                f"{body.get('message', '')}".strip(),
                url=base_url,
                handle=text,
            )
        err: HandleError = error_for_code(code)(
            f"node {base_url}: {body.get('message', 'error')}", handle=text
        )
        raise err

    def _send(self, url: str) -> tuple[int, bytes]:
        """Status and body of a GET: plain connections, or the session where one is mounted."""
        if self.session.get_adapter(url) is self._adapter:
            return self.connections.get(url, self.timeout)
        # An adapter mounted for this node (an in-process hierarchy's WSGI apps).
        resp = self.session.get(url, timeout=self.timeout)
        return resp.status_code, resp.content


def _multi_get_url(base_url: str, handles: Sequence[Handle], chunk: list[int]) -> str:
    """The multi-get URL for the handles at positions `chunk`."""
    query = "&".join(f"handle={quote(handles[i].text, safe='/')}" for i in chunk)
    return f"{base_url}/api/batch/handles?{query}"


class PendingMany:
    """A multi-get on its way (Upstream.start_many), or one already answered.

    Wait until fileno() is readable, then finish(); expire() once its time is up.
    """

    def __init__(
        self,
        sent: Sent | None,
        finish: Callable[[], list[list[dict[str, Any]] | HandleError]],
        expire: Callable[[], HandleError],
        expires_at: float,
    ) -> None:
        self._sent = sent
        self.finish = finish
        """The records in order, as fetch_many gives them (it raises as fetch_many does)."""
        self.expire = expire
        """Give up on the answer: the error each of its records then gets."""
        self.expires_at = expires_at
        """When (time.monotonic) the node's answer is late: then expire()."""

    @classmethod
    def done(cls, results: list[list[dict[str, Any]] | HandleError]) -> PendingMany:
        """An answer that needs no waiting."""

        def expire() -> HandleError:
            raise AssertionError("an answered multi-get never expires")

        return cls(None, lambda: results, expire, math.inf)

    def fileno(self) -> int | None:
        """The socket to wait on; None if finish() can be called at once."""
        return None if self._sent is None else self._sent.fileno()
