"""Replication between the top-level nodes: roles, the change feed, status, promotion.

The primary (Chongqing) logs every write of its prefix registry in its store's change
log; the backup (Chengdu) pulls that log through `GET /api/replication/changes`
(long-poll, resolver.follower), applies it in order and idempotently, and mirrors it in
its own change log under the same numbers, so that after `POST /_emulator/promote` it
can serve the feed itself. Roles live in the store's meta, so a restart keeps them:

- ``replication.role``: "primary" or "backup" (the topology's role until set);
- ``replication.epoch``: a counter raised by each promotion; a node that finds a peer
  primary with a higher epoch steps down and follows it (the old primary rejoining);
- ``replication.upstream``: the node a backup follows (the topology primary until set);
- ``replication.state``: the follower's last contact (JSON), read by `/_emulator/status`;
- ``replication.ack.<node>``: how far a follower has applied (written by the primary).

Writes on a primary are semi-synchronous: the answer waits (up to
`replication_sync_timeout`) until a connected backup holds the write; with no backup
connected they are asynchronous. The answer says which in `X-Idr-Replicated`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import requests

from idcore.errors import AuthenticationFailed, AuthenticationNeeded, ServerReadOnly
from idcore.settings import NodeSettings
from idcore.store import LOG_ID_META, Store, new_log_id
from idcore.topology import NodeSpec, Topology

log = logging.getLogger("idr.replication")

REPLICATION = "idr.replication"
ROLE_META = "replication.role"
EPOCH_META = "replication.epoch"
UPSTREAM_META = "replication.upstream"
STATE_META = "replication.state"
ACK_META = "replication.ack."

FEED_PATH = "/api/replication/changes"
POLL_INTERVAL = 0.02
PEER_TIMEOUT = 1.0


class ReplicationError(RuntimeError):
    """The upstream's feed could not be read (unreachable, refused, malformed)."""


class Replication:
    """The replication state machine of one top-level node over its store."""

    def __init__(
        self,
        store: Store,
        spec: NodeSpec,
        topology: Topology,
        settings: NodeSettings,
        session: requests.Session | None = None,
    ) -> None:
        self.store = store
        self.spec = spec
        self.name = spec.name
        self.topology = topology
        self.peers = [n for n in topology.top_level if n.name != spec.name]
        self.secret = settings.replication_secret.get_secret_value()
        self.wait = settings.replication_wait
        self.batch = settings.replication_batch
        self.sync_timeout = settings.replication_sync_timeout
        self.check_interval = settings.peer_check_interval
        self.timeout = settings.upstream_timeout
        self.session = session or requests.Session()
        # Wraps every wait on the network; the follower thread lets forks happen there.
        self.network_wait: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext

    # -- roles ------------------------------------------------------------------------

    def role(self) -> str:
        """ "primary" (writable, the source of the feed) or "backup" (a read-only follower)."""
        stored = self.store.get_meta(ROLE_META)
        if stored in ("primary", "backup"):
            return stored
        return "primary" if self.spec.role == "primary" else "backup"

    def epoch(self) -> int:
        """The promotion counter this node knows."""
        try:
            return int(self.store.get_meta(EPOCH_META) or 0)
        except ValueError:
            return 0

    def upstream(self) -> NodeSpec | None:
        """The node a backup follows: the one it was told to, else the topology's primary."""
        named = self.store.get_meta(UPSTREAM_META)
        candidates = [n for n in self.peers if n.name == named] if named else []
        if not candidates:
            candidates = [n for n in self.peers if n.role == "primary"] or self.peers[:1]
        return candidates[0] if candidates else None

    def check_writable(self) -> None:
        """Raise ServerReadOnly (7, HTTP 503) on a backup, naming where writes go."""
        if self.role() == "primary":
            return
        up = self.upstream()
        where = f"the primary {up.name} at {up.url}" if up else "the primary top-level node"
        raise ServerReadOnly(
            f"{self.name} is a read-only backup top-level node: send writes to {where}"
        )

    # -- the primary's side: feed, acknowledgements, semi-sync -----------------------

    def check_token(self, authorization: str | None) -> None:
        """The feed carries secret hashes: it needs the replication bearer token."""
        if not authorization:
            raise AuthenticationNeeded(
                "the replication feed needs 'Authorization: Bearer <IDR_REPLICATION_SECRET>'"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.secret.encode()
        ):
            raise AuthenticationFailed("wrong replication token")

    def feed(
        self,
        after: int,
        limit: int,
        wait: float,
        follower: str | None = None,
        follower_log: str | None = None,
        follower_at: float | None = None,
        gone: Callable[[], bool] = lambda: False,
    ) -> dict[str, Any]:
        """Changes after `after` (waiting up to `wait` s for one), and where the log stands.

        A follower names its history (`follower_log`) and the time of its change `after`
        (`follower_at`): if either differs from ours it must resynchronise, so the answer
        comes at once. The wait also ends when `gone()` says the follower hung up.
        """
        store = self.store
        log_id = store.log_id()
        deadline = time.monotonic() + wait
        first = True
        while True:
            # One read: the change at `after` (to prove continuity), the page, one more.
            start = max(after - 1, 0)
            window = store.changes_after(start, limit + 2 if after > 0 else limit + 1)
            base = window[0] if after > 0 and window and window[0].seq == after else None
            changes = [e for e in window if e.seq > after]
            diverged = follower_log is not None and (
                follower_log != log_id or (after > 0 and (base is None or base.at != follower_at))
            )
            if first and follower and follower_log is not None and not diverged:
                self._ack(follower, after)
            first = False
            if changes or diverged or time.monotonic() >= deadline or gone():
                break
            time.sleep(POLL_INTERVAL)
        page, rest = changes[:limit], changes[limit:]
        return {
            "responseCode": 1,
            "node": self.name,
            "role": self.role(),
            "epoch": self.epoch(),
            "log_id": log_id,
            "last_seq": max(store.last_seq(), page[-1].seq if page else 0),
            "after": after,
            "base_at": base.at if base else None,
            "changes": [e.to_json() for e in page],
            "next_at": rest[0].at if rest else None,
        }

    def _ack(self, follower: str, seq: int) -> None:
        """Remember how far a follower holds our log (it asks for what comes after)."""
        if follower not in {p.name for p in self.peers}:
            return
        blob = json.dumps({"seq": seq, "time": time.time()})
        self.store.set_meta(ACK_META + follower, blob)

    def acks(self) -> dict[str, dict[str, float]]:
        """Each peer's last acknowledgement: {"seq", "time"}."""
        out: dict[str, dict[str, float]] = {}
        for peer in self.peers:
            raw = self.store.get_meta(ACK_META + peer.name)
            if raw:
                try:
                    out[peer.name] = json.loads(raw)
                except ValueError:
                    continue
        return out

    def _connected(self, ack: dict[str, float], now: float) -> bool:
        # A connected follower asks again at least every `wait` seconds.
        return now - ack["time"] <= max(2 * self.wait, self.wait + 5.0)

    def wait_replicated(self, seq: int, timeout: float | None = None) -> str:
        """Wait until a connected follower holds change `seq`: "synced", "async" or "timeout"."""
        limit = self.sync_timeout if timeout is None else timeout
        if limit <= 0:
            return "async"
        deadline = time.monotonic() + limit
        while True:
            now = time.time()
            live = [a for a in self.acks().values() if self._connected(a, now)]
            if not live:
                return "async"
            if any(a["seq"] >= seq for a in live):
                return "synced"
            if time.monotonic() >= deadline:
                return "timeout"
            time.sleep(POLL_INTERVAL)

    def state(self) -> dict[str, Any]:
        """The follower's last recorded contact."""
        raw = self.store.get_meta(STATE_META)
        if not raw:
            return {}
        try:
            state: dict[str, Any] = json.loads(raw)
        except ValueError:
            return {}
        return state

    # -- peers: promotion and rejoin ----------------------------------------------------

    def peer_status(self, peer: NodeSpec) -> dict[str, Any] | None:
        """A peer's /_emulator/status, or None if it does not answer."""
        try:
            with self.network_wait():
                resp = self.session.get(f"{peer.url}/_emulator/status", timeout=PEER_TIMEOUT)
            body: dict[str, Any] = resp.json()
        except (requests.RequestException, ValueError):
            return None
        return body if resp.status_code == 200 else None

    def _rank(self, name: str) -> int:
        names = [n.name for n in self.topology.top_level]
        return names.index(name) if name in names else len(names)

    def reconcile(self) -> str | None:
        """A primary that finds a peer primary of a higher epoch steps down and follows it.

        Equal epochs: the node listed first in the topology keeps the role. Returns the
        name of the peer now followed, or None.
        """
        if self.role() != "primary":
            return None
        mine = (self.epoch(), -self._rank(self.name))
        for peer in self.peers:
            status = self.peer_status(peer)
            if not status or status.get("role") != "primary":
                continue
            theirs = (int(status.get("epoch") or 0), -self._rank(peer.name))
            if theirs > mine:
                self.store.set_meta_many(
                    {ROLE_META: "backup", UPSTREAM_META: peer.name, EPOCH_META: str(theirs[0])}
                )
                log.warning(
                    "%s: %s is primary at epoch %s: stepping down to follow it",
                    self.name,
                    peer.name,
                    theirs[0],
                )
                return peer.name
        return None

    def promote(self) -> dict[str, Any]:
        """Make this node the writable primary: a new history and a higher epoch."""
        if self.role() == "primary":
            return {"promoted": False, "message": f"{self.name} is already the primary"}
        state = self.state()
        up = self.upstream()
        epoch = self.epoch() + 1
        if up is not None:
            # A primary we can still reach may have promoted meanwhile: go above it.
            status = self.peer_status(up)
            if status:
                epoch = max(epoch, int(status.get("epoch") or 0) + 1)
        # The new history id fences the follower: changes of the old one no longer apply.
        self.store.set_meta_many(
            {
                LOG_ID_META: new_log_id(),
                ROLE_META: "primary",
                EPOCH_META: str(epoch),
                UPSTREAM_META: "",
            }
        )
        message = f"{self.name} is now the writable primary (epoch {epoch})"
        if up is not None:
            message += f"; {up.name} steps down and follows it when it sees this epoch"
        return {
            "promoted": True,
            "message": message,
            "previous_upstream": up.name if up else None,
            # Unreachable: writes it took after our last contact are not here (asynchronous).
            "previous_upstream_reachable": self._fresh(state, time.time()),
        }

    # -- status -------------------------------------------------------------------------

    def _fresh(self, state: dict[str, Any], now: float) -> bool:
        """True if the follower heard from its upstream lately and no error came since."""
        contact = state.get("contact_at")
        if contact is None:
            return False
        if state.get("error") and float(state.get("error_at") or 0) >= float(contact):
            return False
        return now - float(contact) <= self.wait + self.timeout + 2.0

    def status(self) -> dict[str, Any]:
        """What /_emulator/status reports."""
        now = time.time()
        role = self.role()
        last = self.store.last_seq()
        out: dict[str, Any] = {
            "node": self.name,
            "role": role,
            "topology_role": self.spec.role,
            "writable": role == "primary",
            "epoch": self.epoch(),
            "log_id": self.store.log_id(),
            "last_seq": last,
            "durability": self.store.durability(),
        }
        if role == "primary":
            followers = []
            for name, ack in sorted(self.acks().items()):
                followers.append(
                    {
                        "node": name,
                        "acked_seq": int(ack["seq"]),
                        "seq_behind": max(0, last - int(ack["seq"])),
                        "seen_seconds_ago": round(now - ack["time"], 3),
                        "connected": self._connected(ack, now),
                    }
                )
            mode = "async" if self.sync_timeout <= 0 else "semi-sync"
            out.update(
                {
                    "last_seq_applied": last,
                    "seq_behind": 0,
                    "seconds_behind": 0.0,
                    "followers": followers,
                    "sync": mode,
                }
            )
            return out
        state = self.state()
        up = self.upstream()
        upstream_last = int(state.get("upstream_last_seq") or 0)
        behind = max(0, upstream_last - last)
        fresh = self._fresh(state, now)
        seconds: float | None
        if not fresh:
            seconds = None
        elif behind == 0:
            seconds = 0.0
        else:
            since = state.get("pending_since") or state.get("contact_at") or now
            seconds = round(max(0.0, now - float(since)), 3)
        out.update(
            {
                "last_seq_applied": last,
                "primary": {
                    "node": up.name if up else None,
                    "url": up.url if up else None,
                    "role": state.get("upstream_role"),
                    "last_seq": upstream_last,
                    "reachable": fresh,
                    "last_contact_seconds_ago": (
                        round(now - float(state["contact_at"]), 3)
                        if state.get("contact_at")
                        else None
                    ),
                    "error": state.get("error"),
                },
                "seq_behind": behind,
                "seconds_behind": seconds,
                "resyncs": int(state.get("resyncs") or 0),
                "follower_pid": state.get("pid"),
            }
        )
        return out
