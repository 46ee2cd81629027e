"""The records a node holds from its first start: admin handles, prefix records, demo seed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from idcore.credentials import hash_secret
from idcore.demo import DemoData, Enterprise
from idcore.signing import with_pubkeys
from idcore.store import Record, Store
from idcore.template import template_record
from idcore.topology import NodeSpec, Topology
from idcore.values import ALL_PERMISSIONS, SECRET_PERMISSIONS, now_iso

SEED_META = "seed"


def _string(index: int, vtype: str, value: str, stamp: str) -> dict[str, Any]:
    return {
        "index": index,
        "type": vtype,
        "data": {"format": "string", "value": value},
        "ttl": 86400,
        "timestamp": stamp,
    }


def _admin(index: int, handle: str, stamp: str, admin_index: int = 300) -> dict[str, Any]:
    return {
        "index": index,
        "type": "HS_ADMIN",
        "data": {
            "format": "admin",
            "value": {"handle": handle, "index": admin_index, "permissions": ALL_PERMISSIONS},
        },
        "ttl": 86400,
        "timestamp": stamp,
    }


def _seckey(secret: str, stamp: str) -> dict[str, Any]:
    value = _string(300, "HS_SECKEY", hash_secret(secret), stamp)
    value["permissions"] = SECRET_PERMISSIONS
    return value


def site_value(spec: NodeSpec, stamp: str, url: str | None = None) -> dict[str, Any]:
    """HS_SITE (index 1) describing how to reach a node over HTTP."""
    base = (url or spec.url).rstrip("/")
    return {
        "index": 1,
        "type": "HS_SITE",
        "data": {
            "format": "site",
            "value": {
                "version": 1,
                "protocolVersion": "2.10",
                "serialNumber": 1,
                "primarySite": True,
                "multiPrimary": False,
                "attributes": [
                    {"name": "desc", "value": spec.title or spec.name},
                    {"name": "node", "value": spec.name},
                    {"name": "baseUrl", "value": base},
                ],
                "servers": [
                    {
                        "serverId": 1,
                        "address": spec.host,
                        "interfaces": [
                            {"query": True, "admin": True, "protocol": "HTTP", "port": spec.port}
                        ],
                    }
                ],
            },
        },
        "ttl": 86400,
        "timestamp": stamp,
    }


def admin_record(admin_handle: str, secret: str, stamp: str, desc: str) -> Record:
    """An admin handle: HS_ADMIN over itself and the hashed secret at index 300."""
    return Record(
        admin_handle,
        [
            _string(2, "DESC", desc, stamp),
            _admin(100, admin_handle, stamp),
            _seckey(secret, stamp),
        ],
    )


def top_level_records(
    topology: Topology,
    spec: NodeSpec,
    secret: str,
    public_keys: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> list[Record]:
    """The top-level node's own prefix record and one delegation per secondary node.

    `public_keys` maps node names to their JWKs (current first): the top-level node's own
    go into its prefix record (the trust anchor clients pin), each secondary node's into
    its delegation `0.NA/88.NNN` as HS_PUBKEY values from index 300.
    """
    keys = public_keys or {}
    stamp = now_iso()
    own = f"0.NA/{spec.prefix}"
    anchor = admin_record(own, secret, stamp, "national top-level prefix (demo)")
    anchor.values = with_pubkeys(anchor.values, keys.get(spec.name, ()))
    records = [anchor]
    for node in topology.secondaries:
        values = [
            site_value(node, stamp),
            _string(2, "DESC", node.title or node.name, stamp),
            _admin(100, f"{node.prefix}/ADMIN", stamp),
        ]
        records.append(Record(f"0.NA/{node.prefix}", with_pubkeys(values, keys.get(node.name, ()))))
    return records


def enterprise_records(ent: Enterprise, node_prefix: str, stamp: str) -> list[Record]:
    """An enterprise's prefix record (0.NA/88.NNN.E) and its admin handle."""
    prefix_record = Record(
        f"0.NA/{ent.prefix}",
        [
            _string(2, "DESC", f"{ent.name} / {ent.name_en}", stamp),
            _admin(100, ent.admin_handle, stamp),
            _admin(101, f"{node_prefix}/ADMIN", stamp),
            _string(2000, "enterprise_name", ent.name, stamp),
            _string(2001, "enterprise_name_en", ent.name_en, stamp),
        ],
    )
    return [prefix_record, admin_record(ent.admin_handle, ent.secret, stamp, ent.name_en)]


def secondary_records(spec: NodeSpec, secret: str, demo: DemoData | None) -> list[Record]:
    """A secondary node's admin handle and, with the demo, its templates, enterprises and
    identifiers (the demo records carry their own URL, HS_ADMIN and template values)."""
    stamp = now_iso()
    records = [admin_record(f"{spec.prefix}/ADMIN", secret, stamp, spec.title or spec.name)]
    if demo is None:
        return records
    # Templates are identifiers too: <node prefix>/TEMPLATE.<name>, one per record kind.
    for template in demo.templates_of(spec.name):
        records.append(template_record(spec.prefix, template, stamp))
    for ent in demo.enterprises_of(spec.name):
        records.extend(enterprise_records(ent, spec.prefix, stamp))
    for handle, values in demo.for_node(spec.name):
        records.append(Record(handle, sorted(values, key=lambda v: int(v["index"]))))
    return records


def fingerprint(*parts: str) -> str:
    """A short digest naming what was seeded, so a restart with the same seed skips it."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def seed_once(store: Store, mark: str, build: Any) -> bool:
    """Write `build()` unless the store already holds the seed named `mark`."""
    if store.get_meta(SEED_META) == mark:
        return False
    store.put_many(build())
    store.set_meta(SEED_META, mark)
    return True
