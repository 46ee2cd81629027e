"""The client library: resolve identifiers through the top-level nodes, failing over."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from clients.breaker import CircuitBreaker
from clients.cache import TTLCache, record_ttl
from clients.trust import Verdict, Verifier
from idcore.errors import (
    HandleError,
    HandleNotFound,
    NodeTimeout,
    NodeUnreachable,
    ServerBusy,
    ServerError,
    ServerReadOnly,
    TransportError,
    error_for_code,
)
from idcore.identifier import Handle, from_scan
from idcore.records import filter_values
from idcore.site import site_url

DEFAULT_TOP_LEVEL = ("http://127.0.0.1:8000", "http://127.0.0.1:8001")
Mode = Literal["recursive", "iterative"]


@dataclass
class ResolvedRecord:
    """A resolved handle record, the node that answered it and how many attempts it took."""

    handle: str
    values: list[dict[str, Any]]
    served_by: str
    response_code: int = 1
    cached: bool = False
    path: list[str] = field(default_factory=list)
    attempts: int = 1
    trust: Verdict | None = None  # filled by Resolver(verify=True) (clients/trust.py)

    def first(self, vtype: str) -> dict[str, Any] | None:
        """The first value of a type."""
        return next((v for v in self.values if v["type"] == vtype), None)

    def data(self, vtype: str) -> Any:
        """The data value of the first value of a type, or None."""
        value = self.first(vtype)
        return None if value is None else value["data"]["value"]

    def to_json(self) -> dict[str, Any]:
        """The Handle JSON form of the record."""
        return {"responseCode": self.response_code, "handle": self.handle, "values": self.values}


class GatewayFailure(ServerError):
    """The node answered, but the node behind it failed (HTTP 502/504): retry, do not blame it."""


_FAILOVER = (TransportError, ServerError, ServerBusy, ServerReadOnly)
"""Failures that move a read to the next node: no connection, no answer in time, HTTP 5xx."""


def retry_allowed(method: str) -> bool:
    """Only reads are retried: a write that timed out may have been applied already."""
    return method.upper() in ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class _Referral:
    via: str
    target: str


class _Budget:
    """The time one resolve may still take, over every node and retry."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        return self.ends - time.monotonic()


class Resolver:
    """Resolves handles through an ordered list of top-level nodes, with a TTL cache.

    Reads fail over: on a connection error, a timeout or an HTTP 5xx the next node is
    asked at once; when every node failed, another round follows after a full-jitter
    backoff, `retries` times at most and never past `deadline` seconds in all. A Handle
    answer (100 not found, 400s) is final and never retried, and a node that timed out is
    not asked again within the same read. A node that keeps failing is skipped while its
    circuit is open and probed again after `breaker.reset_after`; when every node's
    circuit is open they are all tried anyway (Envoy's "panic" mode), so the breaker never
    turns a slow answer into none. The Resolver only reads: writes belong to the secondary
    nodes and are never retried blindly (see `retry_allowed`).
    """

    def __init__(
        self,
        top_level: str | Sequence[str] = DEFAULT_TOP_LEVEL,
        *,
        mode: Mode = "recursive",
        timeout: float = 3.0,
        cache_size: int = 10_000,
        negative_ttl: float = 5.0,
        session: requests.Session | None = None,
        retries: int = 2,
        backoff: float = 0.1,
        backoff_cap: float = 2.0,
        deadline: float | None = None,
        breaker: CircuitBreaker | None = None,
        seed: int | None = None,
        verify: bool = False,
    ) -> None:
        urls = [top_level] if isinstance(top_level, str) else list(top_level)
        if not urls:
            raise ValueError("Resolver needs at least one top-level node URL")
        if retries < 0:
            raise ValueError(f"retries must be zero or more, not {retries}")
        self.top_level = [u.rstrip("/") for u in urls]
        self.mode = mode
        self.timeout = timeout
        self.negative_ttl = negative_ttl
        self.retries = retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.deadline = deadline
        self.breaker = breaker or CircuitBreaker()
        self.cache: TTLCache[ResolvedRecord] = TTLCache(cache_size)
        self._missing: TTLCache[bool] = TTLCache(cache_size)
        self._referrals: TTLCache[str] = TTLCache(1024)
        self.session = session or _pooled_session()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._sleep: Callable[[float], None] = time.sleep
        # Checks each record's signature chain from the pinned anchor (clients/trust.py).
        self.verifier: Verifier | None = Verifier.for_resolver(self) if verify else None

    # -- public API --------------------------------------------------------------

    def resolve(
        self,
        identifier: str,
        *,
        types: Sequence[str] = (),
        indexes: Sequence[int] = (),
        fresh: bool = False,
    ) -> ResolvedRecord:
        """Resolve an identifier (also `hdl:` forms and consumer URLs); filters apply locally."""
        handle = from_scan(identifier)
        record = self._record(handle, fresh)
        if self.verifier is not None:  # the whole record: filters apply after the check
            record.trust = self.verifier.check(handle.text, record.values)
        if not types and not indexes:
            return record
        values = filter_values(record.values, list(indexes), list(types))
        return ResolvedRecord(
            handle=record.handle,
            values=values,
            served_by=record.served_by,
            response_code=1 if values else 200,
            cached=record.cached,
            path=record.path,
            attempts=record.attempts,
            trust=record.trust,
        )

    def resolve_at(self, base_url: str, identifier: str) -> ResolvedRecord:
        """Ask one node directly (retrying reads), bypassing the hierarchy and the cache."""
        handle = from_scan(identifier)
        budget = self._budget()
        answer = self._read([base_url.rstrip("/")], handle, {}, budget)
        return self._final(answer, handle, {}, budget)

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution --------------------------------------------------------------

    def _budget(self) -> _Budget:
        return _Budget(self.deadline if self.deadline is not None else 2 * self.timeout)

    def _record(self, handle: Handle, fresh: bool) -> ResolvedRecord:
        key = handle.key
        if not fresh:
            hit = self.cache.get(key)
            if hit is not None:
                return _copy_as_cached(hit, handle.text)
            if self._missing.get(key):
                raise HandleNotFound(
                    f"handle {handle.text!r} not found (cached)", handle=handle.text
                )
        try:
            record = self._resolve_uncached(handle, fresh)
        except HandleNotFound:
            self._missing.put(key, True, self.negative_ttl)
            raise
        self.cache.put(key, record, record_ttl(record.values))
        return record

    def _resolve_uncached(self, handle: Handle, fresh: bool) -> ResolvedRecord:
        params = {"auth": "true"} if fresh else {}
        budget = self._budget()
        if self.mode == "iterative":
            site = self._referrals.get(_prefix_key(handle))
            if site is not None:
                answer = self._read([site], handle, params, budget)
                return self._final(answer, handle, params, budget)
            params = {**params, "recursion": "false"}
        answer = self._read(self.top_level, handle, params, budget)
        return self._final(answer, handle, params, budget)

    def _final(
        self,
        answer: ResolvedRecord | _Referral,
        handle: Handle,
        params: dict[str, str],
        budget: _Budget,
    ) -> ResolvedRecord:
        if isinstance(answer, ResolvedRecord):
            return answer
        # Retries and the breaker now apply to the secondary node, not the top-level one.
        clean = {k: v for k, v in params.items() if k != "recursion"}
        record = self._read([answer.target], handle, clean, budget)
        if isinstance(record, _Referral):
            raise ServerError(
                f"{answer.target} referred {handle.text!r} again (to {record.target}): "
                "a secondary node must answer for its own prefix",
                handle=handle.text,
            )
        record.path = [answer.via, answer.target]
        return record

    def _read(
        self,
        urls: Sequence[str],
        handle: Handle,
        params: dict[str, str],
        budget: _Budget,
        method: str = "GET",
    ) -> ResolvedRecord | _Referral:
        """Ask the first node that answers, failing over and retrying within the budget."""
        failures: list[tuple[str, HandleError]] = []
        attempts = 0
        rounds = self.retries + 1 if retry_allowed(method) else 1
        # A node that let a whole timeout pass is not asked again in this read: waiting
        # for it twice would spend the budget the other nodes (and the caller) need.
        hung: set[str] = set()
        for round_no in range(rounds):
            candidates = [u for u in urls if u not in hung]
            if not candidates:
                break
            if round_no:
                pause = self._pause(round_no - 1)
                if pause >= budget.left():
                    break
                self._sleep(pause)
            tried = False
            for base in self._order(candidates):
                left = budget.left()
                if left <= 0:
                    self.breaker.release(base)  # no probe after all
                    break
                tried = True
                attempts += 1
                try:
                    answer = self._attempt(base, handle, params, min(self.timeout, left))
                except _FAILOVER as exc:
                    failures.append((base, exc))
                    if isinstance(exc, NodeTimeout):
                        hung.add(base)
                    continue
                if isinstance(answer, ResolvedRecord):
                    answer.attempts = attempts
                return answer
            if not tried:
                break
        raise _exhausted(failures, urls, handle, self.timeout)

    def _order(self, urls: Sequence[str]) -> Iterator[str]:
        """Nodes whose circuit lets a request through, in order; all of them if none does."""
        skipped = []
        for url in urls:
            if self.breaker.allow(url):
                yield url
            else:
                skipped.append(url)
        if len(skipped) == len(urls):
            yield from skipped

    def _pause(self, retry: int) -> float:
        """Full-jitter backoff: uniform in [0, min(cap, base * 2**retry)]."""
        with self._rng_lock:
            return self._rng.uniform(0, min(self.backoff_cap, self.backoff * 2**retry))

    def _attempt(
        self, base: str, handle: Handle, params: dict[str, str], timeout: float
    ) -> ResolvedRecord | _Referral:
        """One GET; tells the breaker how the node did."""
        verdict = False
        try:
            answer = self._get(base, handle, params, timeout)
        except GatewayFailure:
            verdict = True
            self.breaker.record_success(base)  # it answered; the node behind it did not
            raise
        except _FAILOVER:
            verdict = True
            self.breaker.record_failure(base)
            raise
        except HandleError:
            verdict = True
            self.breaker.record_success(base)  # a Handle answer: the node works
            raise
        finally:
            if not verdict:
                self.breaker.release(base)
        self.breaker.record_success(base)
        return answer

    def _get(
        self, base: str, handle: Handle, params: dict[str, str], timeout: float
    ) -> ResolvedRecord | _Referral:
        url = f"{base}/api/handles/{handle.text}"
        try:
            resp = self.session.get(url, params=params, timeout=timeout)
        except requests.Timeout:
            raise NodeTimeout(
                f"{base} did not answer within {timeout:.3g}s", url=base, handle=handle.text
            ) from None
        except requests.RequestException as exc:
            raise NodeUnreachable(
                f"{base} is unreachable ({type(exc).__name__})", url=base, handle=handle.text
            ) from None
        try:
            body = resp.json()
            code = int(body["responseCode"])
        except (ValueError, KeyError, TypeError):
            raise ServerError(
                f"{base} answered HTTP {resp.status_code} without Handle JSON", handle=handle.text
            ) from None
        if resp.status_code == 200 and code in (1, 200):
            return ResolvedRecord(
                handle=body.get("handle", handle.text),
                values=body.get("values", []),
                served_by=base,
                response_code=code,
                path=[base],
            )
        if code == 303 and resp.status_code == 300:
            return self._referral(handle, body, base)
        message = str(body.get("message", f"responseCode {code}"))
        if resp.status_code in (502, 504):
            raise GatewayFailure(f"{base}: HTTP {resp.status_code} {message}", handle=handle.text)
        if resp.status_code >= 500:
            cls = error_for_code(code)
            if cls not in (ServerBusy, ServerReadOnly):
                cls = ServerError
            raise cls(f"{base}: HTTP {resp.status_code} {message}", handle=handle.text)
        raise error_for_code(code)(message, handle=handle.text)

    def _referral(self, handle: Handle, body: dict[str, Any], via: str) -> _Referral:
        sites = [v for v in body.get("values", []) if v.get("type") == "HS_SITE"]
        if not sites:
            raise ServerError(f"{via} sent a referral without HS_SITE values", handle=handle.text)
        target = site_url(sites[0])
        self._referrals.put(_prefix_key(handle), target, record_ttl(sites))
        return _Referral(via, target)


def _exhausted(
    failures: Sequence[tuple[str, HandleError]],
    urls: Sequence[str],
    handle: Handle,
    timeout: float,
) -> HandleError:
    """One error for a read that every attempt failed, naming each node's failure."""
    if not failures:
        return NodeTimeout(
            f"no time left to ask {', '.join(urls)} for {handle.text!r}",
            url=",".join(urls),
            handle=handle.text,
        )
    if len(failures) == 1:
        return failures[0][1]
    seen: dict[str, int] = {}
    for base, exc in failures:
        text = exc.message if exc.message.startswith(base) else f"{base}: {exc.message}"
        seen[text] = seen.get(text, 0) + 1
    summary = "; ".join(f"{text} (x{n})" if n > 1 else text for text, n in seen.items())
    message = f"{len(failures)} attempts failed for {handle.text!r}: {summary}"
    answered = [exc for _, exc in failures if not isinstance(exc, TransportError)]
    if answered:
        last = answered[-1]
        return type(last)(message, handle=handle.text)
    if all(isinstance(exc, NodeTimeout) for _, exc in failures):
        return NodeTimeout(message, url=",".join(urls), handle=handle.text)
    return NodeUnreachable(message, url=",".join(urls), handle=handle.text)


def _prefix_key(handle: Handle) -> str:
    return handle.homed_prefix.upper()


def _copy_as_cached(record: ResolvedRecord, spelled: str) -> ResolvedRecord:
    return ResolvedRecord(
        handle=spelled,
        values=record.values,
        served_by=record.served_by,
        response_code=record.response_code,
        cached=True,
        path=record.path,
        attempts=0,
    )


def _pooled_session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
