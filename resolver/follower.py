"""The backup's side of replication: pull the primary's change feed and apply it.

A backup asks its upstream for the changes after its last one (long-poll), applies them
in order and idempotently, in one transaction with its own copy of the log entries, and
records the contact for `/_emulator/status`. When the upstream is on another history (a
promoted peer, a reset primary) or does not continue the backup's last change (a primary
that lost writes), the backup resynchronises: it fetches the whole log and replaces its
records and log in one transaction. While its node is the primary, the same thread
watches the peers instead and steps down if one was promoted past it.

Under gunicorn the thread runs in the master process (the app is built before the
workers fork) and writes the shared store, which the workers read. `start()` is called
by the entry points (resolver.__main__, resolver.wsgi), never at import or by
`create_app`, so in-process tests drive `poll_once()` themselves.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from idcore.store import LogEntry, LogMismatch
from idcore.topology import NodeSpec
from resolver.replication import (
    EPOCH_META,
    FEED_PATH,
    STATE_META,
    Replication,
    ReplicationError,
)

log = logging.getLogger("idr.replication")

BACKOFF_MAX = 1.0


class Follower:
    """Follows the upstream of one top-level node (or watches its peers while primary)."""

    def __init__(self, replication: Replication) -> None:
        self.repl = replication
        self.store = replication.store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Held by the thread while it uses the store, released around network waits; a
        # fork (gunicorn spawning a worker) takes it first, so no child is ever born while
        # the thread is inside SQLite or Redis (their locks would be copied held).
        self._fork_lock: threading.Lock | None = None
        self._holder: int | None = None
        replication.network_wait = self._unlocked

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.repl.secret}"}

    def _fetch(self, up: NodeSpec, params: dict[str, Any], wait: float) -> dict[str, Any]:
        url = f"{up.url}{FEED_PATH}"
        try:
            with self._unlocked():
                resp = self.repl.session.get(
                    url, params=params, headers=self._headers(), timeout=wait + self.repl.timeout
                )
        except requests.RequestException as exc:
            raise ReplicationError(f"{up.name} at {up.url} is unreachable: {exc}") from None
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            raise ReplicationError(
                f"{up.name} answered HTTP {resp.status_code} without JSON"
            ) from None
        if resp.status_code != 200 or body.get("responseCode") != 1:
            raise ReplicationError(
                f"{up.name} refused the feed: HTTP {resp.status_code} "
                f"{body.get('responseCode')} {body.get('message', '')}".strip()
            )
        return body

    def poll_once(self, wait: float = 0.0) -> int:
        """Pull one page of changes from the upstream and apply it; the number applied.

        Resynchronises first when the upstream is on another history or does not hold our
        last change. Raises ReplicationError when the upstream cannot be read.
        """
        if self.repl.role() == "primary":
            return 0
        up = self.repl.upstream()
        if up is None:
            raise ReplicationError(f"{self.repl.name} has no primary to follow in the topology")
        own = self.store.log_id()
        last = self.store.last_entry()
        after = last.seq if last else 0
        params: dict[str, Any] = {
            "after": after,
            "limit": self.repl.batch,
            "wait": wait,
            "follower": self.repl.name,
            "log": own,
        }
        if last is not None:
            params["at"] = repr(last.at)
        body = self._fetch(up, params, wait)
        if body["log_id"] != own or (last is not None and body.get("base_at") != last.at):
            why = "another history" if body["log_id"] != own else "a log that diverged"
            log.warning("%s: %s is on %s: resynchronising", self.repl.name, up.name, why)
            self.resync(up, own)
            return 0
        entries = [LogEntry.from_json(c) for c in body["changes"]]
        try:
            applied = self.store.apply_changes(own, entries)
        except LogMismatch as exc:
            if self.repl.role() == "primary":
                return 0  # promoted meanwhile: these changes are no longer ours to apply
            log.warning("%s: %s: resynchronising", self.repl.name, exc)
            self.resync(up, own)
            return 0
        upstream_last = int(body["last_seq"])
        self._note(up, body, upstream_last, None if applied >= upstream_last else body["next_at"])
        return len([e for e in entries if e.seq > after])

    def resync(self, up: NodeSpec, expected: str) -> None:
        """Copy the upstream's whole log, then replace our records and log with it at once."""
        entries: list[LogEntry] = []
        history: str | None = None
        body: dict[str, Any] = {}
        after = 0
        while True:
            params = {"after": after, "limit": self.repl.batch, "wait": 0}
            body = self._fetch(up, params, 0)
            if history is None:
                history = str(body["log_id"])
            elif body["log_id"] != history:
                raise ReplicationError(f"{up.name} started another history during the resync")
            page = [LogEntry.from_json(c) for c in body["changes"]]
            entries.extend(page)
            if not page or page[-1].seq >= int(body["last_seq"]):
                break
            after = page[-1].seq
        assert history is not None
        if self.repl.role() == "primary":
            return
        self.store.replace_log(history, entries, expected=expected)
        applied = entries[-1].seq if entries else 0
        self._note(up, body, max(applied, int(body["last_seq"])), None, resynced=True)

    def _note(
        self,
        up: NodeSpec,
        body: dict[str, Any],
        upstream_last: int,
        pending_since: Any,
        resynced: bool = False,
    ) -> None:
        """Record the last contact for /_emulator/status (and adopt a higher epoch)."""
        resyncs = int(self.repl.state().get("resyncs") or 0) + (1 if resynced else 0)
        state = {
            "upstream": up.name,
            "url": up.url,
            "upstream_role": body.get("role"),
            "upstream_last_seq": upstream_last,
            "contact_at": time.time(),
            "pending_since": pending_since,
            "error": None,
            "resyncs": resyncs,
            "pid": os.getpid(),  # the process that follows: the gunicorn master
        }
        values = {STATE_META: json.dumps(state)}
        epoch = int(body.get("epoch") or 0)
        if epoch > self.repl.epoch():
            values[EPOCH_META] = str(epoch)
        self.store.set_meta_many(values)

    def _note_error(self, exc: BaseException) -> None:
        raw = self.store.get_meta(STATE_META)
        state: dict[str, Any] = {}
        if raw:
            try:
                state = json.loads(raw)
            except ValueError:
                state = {}
        state["error"] = str(exc)
        state["error_at"] = time.time()
        self.store.set_meta(STATE_META, json.dumps(state))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The follower thread's hold on the store (see _fork_lock)."""
        lock = self._fork_lock
        if lock is None:
            yield
            return
        with lock:
            self._holder = threading.get_ident()
            try:
                yield
            finally:
                self._holder = None

    @contextmanager
    def _unlocked(self) -> Iterator[None]:
        """Let a fork happen while the follower thread waits on the network."""
        lock = self._fork_lock
        if lock is None or self._holder != threading.get_ident():
            yield
            return
        self._holder = None
        lock.release()
        try:
            yield
        finally:
            lock.acquire()
            self._holder = threading.get_ident()

    def _forking(self) -> None:
        if self._fork_lock is not None:
            self._fork_lock.acquire()

    def _forked_parent(self) -> None:
        if self._fork_lock is not None:
            self._fork_lock.release()

    def _forked_child(self) -> None:
        # The child (a gunicorn worker) has no follower thread: it only serves requests.
        self._fork_lock = None
        self._holder = None
        self._thread = None

    def start(self) -> None:
        """Step down if a peer was promoted meanwhile, then follow or watch in a thread."""
        try:
            self.repl.reconcile()
        except Exception:  # a broken peer must not stop this node from starting
            log.exception("%s: checking the peers failed", self.repl.name)
        if self._thread is not None and self._thread.is_alive():
            return
        if self._fork_lock is None:
            self._fork_lock = threading.Lock()
            os.register_at_fork(
                before=self._forking,
                after_in_parent=self._forked_parent,
                after_in_child=self._forked_child,
            )
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"idr-replication-{self.repl.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (it finishes the poll in flight)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def step(self) -> float:
        """One round of the thread: seconds to rest before the next."""
        with self._locked():
            if self.repl.role() == "primary":
                self.repl.reconcile()
                return self.repl.check_interval
            self.poll_once(self.repl.wait)
            return 0.0

    def run(self) -> None:
        """Follow the upstream while a backup; watch the peers while a primary."""
        backoff = 0.1
        while not self._stop.is_set():
            try:
                pause = self.step()
                backoff = 0.1
            except Exception as exc:
                if not isinstance(exc, ReplicationError):
                    log.exception("%s: replication step failed", self.repl.name)
                try:
                    with self._locked():
                        self._note_error(exc)
                except Exception:
                    log.exception("%s: could not record the replication error", self.repl.name)
                pause, backoff = backoff, min(backoff * 2, BACKOFF_MAX)
            if pause:
                self._stop.wait(pause)
