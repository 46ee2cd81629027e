"""Trust routes of a node: its public keys, the top-level trust anchor, key rotation.

- `GET /api/trust/keys`: the node's public keys (JWK set, current first).
- `GET /api/trust/anchor` (top-level nodes): the top-level prefix record `0.NA/88` with
  its HS_PUBKEY values and signatures, which clients pin (`idr trust fetch`). A backup
  answers from what it replicated, so the anchor is always the primary's key.
- `POST /_emulator/keys/rotate`: a new current key; the old one is kept as retired. A
  top-level primary then republishes and re-signs its prefix record (every retired key
  counter-signs it); a secondary node's new key must be registered in its delegation on
  the top-level node (`idr keys rotate` does both steps).

The top-level nodes of one hierarchy hold one key ring, the primary's (a disaster-recovery
site keeps a copy of the national key): a promoted backup signs with the anchor clients
pinned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from idcore.errors import HandleNotFound
from idcore.identifier import NA_PREFIX, fold
from idcore.keys import published_jwks
from idcore.openapi import CATALOGUE, answer, errors, ref
from idcore.records import RecordService, public_values
from idcore.settings import NodeSettings
from idcore.signing import Signer, with_pubkeys
from idcore.store import Record
from idcore.topology import NodeSpec, Topology
from idcore.web import json_response

TRUST = "idr.trust"


def key_owner(spec: NodeSpec, topology: Topology) -> str:
    """Whose key ring a node signs with: its own, or for a top-level node the primary's."""
    if spec.is_top_level:
        primary = next((n for n in topology.top_level if n.role == "primary"), None)
        return primary.name if primary is not None else spec.name
    return spec.name


def node_signer(settings: NodeSettings, spec: NodeSpec, topology: Topology) -> Signer:
    """The signer of a node, its key ring created on first start."""
    return Signer(
        settings.signing_keys_dir(),
        key_owner(spec, topology),
        issuer=spec.name,
        prefix=spec.prefix,
        anchor_handle=f"{NA_PREFIX}/{spec.prefix}" if spec.is_top_level else None,
    )


def hierarchy_keys(
    settings: NodeSettings, spec: NodeSpec, topology: Topology, signer: Signer
) -> dict[str, list[dict[str, Any]]]:
    """Public keys the top-level node publishes: its own and each secondary node's.

    A secondary node's ring is read from the shared keys directory (created there if the
    node has not started yet, so that both processes agree on it).
    """
    keys_dir = settings.signing_keys_dir()
    out = {spec.name: signer.ring.public_jwks()}
    for node in topology.secondaries:
        out[node.name] = published_jwks(keys_dir, node.name)
    return out


def kids(keys: Mapping[str, Sequence[dict[str, Any]]]) -> list[str]:
    """Every key id, by node: part of the top-level seed mark (a new key reseeds)."""
    return [f"{name}:{jwk['kid']}" for name in sorted(keys) for jwk in keys[name]]


class NodeTrust:
    """A node's signer and what rotating its key entails."""

    def __init__(
        self,
        signer: Signer,
        spec: NodeSpec,
        service: RecordService,
        before_rotate: Callable[[], None] | None = None,
    ) -> None:
        self.signer = signer
        self.spec = spec
        self.service = service
        self.before_rotate = before_rotate

    @property
    def anchor_handle(self) -> str:
        """The top-level prefix record, which carries the anchor keys."""
        return f"{NA_PREFIX}/{self.spec.prefix}"

    def rotate(self) -> dict[str, Any]:
        """Rotate the key; a top-level node republishes its prefix record."""
        if self.before_rotate is not None:
            self.before_rotate()  # a backup refuses: the primary owns the ring
        ring = self.signer.rotate()
        jwks = ring.public_jwks()
        out: dict[str, Any] = {
            "responseCode": 1,
            "node": self.spec.name,
            "owner": ring.owner,
            "kid": ring.current.kid,
            "retired": [k.kid for k in ring.retired],
            "keys": jwks,
        }
        if self.spec.is_top_level:

            def republish(current: Record | None) -> Record:
                if current is None:
                    raise HandleNotFound(f"{self.anchor_handle!r} is missing: reset the node")
                return self.signer(Record(current.handle, with_pubkeys(current.values, jwks)))

            self.service.store.mutate(fold(self.anchor_handle), republish)
            out["message"] = (
                f"{self.anchor_handle} now publishes {ring.current.kid} (retired: "
                f"{', '.join(out['retired'])}); clients accept it with `idr trust fetch`"
            )
        else:
            out["message"] = (
                f"new key {ring.current.kid}: register it in {NA_PREFIX}/{self.spec.prefix} on "
                "the top-level node (idr keys rotate does)"
            )
        return out


def _trust() -> NodeTrust:
    found: NodeTrust = current_app.extensions[TRUST]
    return found


def trust_blueprint(top_level: bool) -> Blueprint:
    """The trust routes (the anchor only on a top-level node)."""
    bp = Blueprint("trust", __name__)

    @bp.get("/api/trust/keys")
    def keys() -> Response:
        trust = _trust()
        ring = trust.signer.ring
        return json_response(
            {
                "responseCode": 1,
                "node": trust.spec.name,
                "owner": ring.owner,
                "prefix": trust.spec.prefix,
                "keys": ring.public_jwks(),
            }
        )

    if top_level:

        @bp.get("/api/trust/anchor")
        def anchor() -> Response:
            trust = _trust()
            record = trust.service.store.get(fold(trust.anchor_handle))
            if record is None:
                raise HandleNotFound(
                    f"{trust.anchor_handle!r} is not here yet", handle=trust.anchor_handle
                )
            return json_response(
                {
                    "responseCode": 1,
                    "node": trust.spec.name,
                    "prefix": trust.spec.prefix,
                    "handle": record.handle,
                    "values": public_values(record.values),
                }
            )

    @bp.post("/_emulator/keys/rotate")
    def rotate() -> Response:
        return json_response(_trust().rotate())

    return bp


_JWKS = {"type": "array", "items": {"type": "object", "required": ["kty", "crv", "x", "kid"]}}
SCHEMAS: dict[str, Any] = {
    "TrustKeys": {
        "type": "object",
        "required": ["responseCode", "node", "owner", "prefix", "keys"],
        "properties": {
            "responseCode": {"const": 1},
            "node": {"type": "string"},
            "owner": {"type": "string"},
            "prefix": {"type": "string"},
            "keys": _JWKS,
        },
    },
    "TrustAnchor": {
        "type": "object",
        "required": ["responseCode", "node", "prefix", "handle", "values"],
        "properties": {
            "responseCode": {"const": 1},
            "node": {"type": "string"},
            "prefix": {"type": "string"},
            "handle": {"type": "string"},
            "values": {"type": "array", "items": {"type": "object"}},
        },
    },
    "KeyRotated": {
        "type": "object",
        "required": ["responseCode", "node", "owner", "kid", "retired", "keys", "message"],
        "properties": {
            "responseCode": {"const": 1},
            "kid": {"type": "string"},
            "retired": {"type": "array", "items": {"type": "string"}},
            "keys": _JWKS,
        },
    },
}


def _operations(top_level: bool) -> dict[tuple[str, str], dict[str, Any]]:
    ops: dict[tuple[str, str], dict[str, Any]] = {
        ("/api/trust/keys", "get"): {
            "tags": ["Trust"],
            "summary": "This node's public signing keys (JWK, current first)",
            "responses": {"200": answer("the keys", ref("TrustKeys"))},
        },
        ("/_emulator/keys/rotate", "post"): {
            "tags": ["Emulator"],
            "summary": "Rotate this node's signing key (the old one stays published, retired)",
            "responses": {"200": answer("rotated", ref("KeyRotated")), **errors(503)},
        },
    }
    if top_level:
        ops[("/api/trust/anchor", "get")] = {
            "tags": ["Trust"],
            "summary": "The trust anchor: the top-level prefix record with its HS_PUBKEY values",
            "responses": {"200": answer("the anchor record", ref("TrustAnchor")), **errors(404)},
        }
    return ops


def init_trust(
    app: Flask,
    signer: Signer,
    spec: NodeSpec,
    service: RecordService,
    before_rotate: Callable[[], None] | None = None,
) -> NodeTrust:
    """Attach the trust routes (after `/openapi.json` is set up, to document them)."""
    trust = NodeTrust(signer, spec, service, before_rotate)
    app.extensions[TRUST] = trust
    app.register_blueprint(trust_blueprint(spec.is_top_level))
    catalogue = app.extensions.get(CATALOGUE)
    if catalogue is not None:
        operations, schemas, _ = catalogue
        operations.update(_operations(spec.is_top_level))
        schemas.update(SCHEMAS)
    return trust
