"""The top-level node: prefix registry, referral and recursive resolution with a TTL cache."""

from __future__ import annotations

from functools import partial

from flask import Flask, Response, current_app, request

from idcore import bench_api, stats
from idcore.bootstrap import fingerprint, seed_once, top_level_records
from idcore.emulator_api import emulator_blueprint, init_app, reseeder
from idcore.errors import NotResponsible
from idcore.handle_api import EXTENSION, apply_limits, handles_blueprint, local_resolve
from idcore.identifier import Handle
from idcore.records import RecordService, filter_values
from idcore.settings import NodeSettings
from idcore.signing import sealed
from idcore.store import Store, open_store
from idcore.trust_api import hierarchy_keys, init_trust, kids, node_signer
from idcore.web import json_response, query_bool, register_error_handlers, values_answer
from resolver.dashboard import init_dashboard
from resolver.delegation import Registry
from resolver.openapi import init_openapi
from resolver.page import page_blueprint
from resolver.replication import REPLICATION, Replication
from resolver.replication_api import init_replication
from resolver.trace_api import trace_blueprint
from resolver.upstream import Upstream

REGISTRY = "idr.registry"
UPSTREAM = "idr.upstream"


def _resolve(text: str, handle: Handle, indexes: list[int], types: list[str]) -> Response:
    registry: Registry = current_app.extensions[REGISTRY]
    found = registry.delegation(handle)
    if found is None or (handle.is_prefix_record and found.prefix.upper() == handle.suffix.upper()):
        return local_resolve(text, handle, indexes, types)
    settings: NodeSettings = current_app.extensions["idr.settings"]
    recurse = settings.recursion and query_bool(request, "recursion", True)
    if not recurse:
        if query_bool(request, "doNotRefer", False):
            raise NotResponsible(
                f"prefix {found.prefix} is homed at {found.base_url}; referral refused "
                "(doNotRefer)",
                handle=text,
            )
        return json_response(
            {
                "responseCode": 303,
                "handle": text,
                "values": found.sites,
                "message": f"prefix {found.prefix} is homed at {found.base_url}",
            },
            300,
        )
    upstream: Upstream = current_app.extensions[UPSTREAM]
    values = upstream.fetch(found.base_url, handle, fresh=query_bool(request, "auth", False))
    return values_answer(text, filter_values(values, indexes, types))


def _before_write(handle: Handle) -> None:
    replication: Replication = current_app.extensions[REPLICATION]
    replication.check_writable()  # a backup refuses writes: 7, HTTP 503, naming the primary
    registry: Registry = current_app.extensions[REGISTRY]
    found = registry.delegation(handle)
    if found is not None and not (
        handle.is_prefix_record and found.prefix.upper() == handle.suffix.upper()
    ):
        # Never redirect a write (pyhandle cannot follow it): say where it belongs.
        raise NotResponsible(
            f"{handle.text!r} is homed by the secondary node at {found.base_url}: write it there",
            handle=handle.text,
        )


def create_app(settings: NodeSettings | None = None, store: Store | None = None) -> Flask:
    """Build a top-level node (primary or backup) from its settings."""
    settings = settings or NodeSettings(node="cq-top")
    topology = settings.load_topology()
    spec = settings.spec(topology)
    store = store or open_store(
        settings.store,
        namespace=spec.name,
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        changelog=True,  # the replication feed the backup follows
        appendfsync=settings.redis_appendfsync,
    )
    registry = Registry(store, spec.prefix)
    signer = node_signer(settings, spec, topology)  # signs every record it writes
    service = RecordService(
        store,
        admin_handle=f"0.NA/{spec.prefix}",
        homes=registry.homes,
        describe_home=f"the prefix records 0.NA/{spec.prefix}.* and referrals below them",
        signer=signer,
    )
    # Delegations carry each secondary node's HS_PUBKEY: a new key anywhere reseeds them.
    keys = partial(hierarchy_keys, settings, spec, topology, signer)
    mark = fingerprint(spec.name, topology.dumps(), settings.seed, *kids(keys()))
    seed = sealed(lambda: top_level_records(topology, spec, settings.secret(), keys()), signer)
    seed_once(store, mark, seed)

    app = Flask(__name__)
    app.config["IDR_NODE"] = {
        "node": spec.name,
        "role": spec.role,
        "prefix": spec.prefix,
        "url": settings.url(spec),
    }
    app.extensions[EXTENSION] = service
    app.extensions[REGISTRY] = registry
    app.extensions[UPSTREAM] = Upstream(
        timeout=settings.upstream_timeout,
        negative_ttl=settings.negative_ttl,
        capacity=settings.cache_size,
    )
    app.extensions["idr.settings"] = settings
    register_error_handlers(app)
    apply_limits(app, settings)  # body size, JSON depth, values, login throttle
    app.register_blueprint(handles_blueprint(_resolve, _before_write))
    app.register_blueprint(emulator_blueprint())
    app.register_blueprint(trace_blueprint())
    app.register_blueprint(page_blueprint())
    init_app(app, reseeder(store, mark, seed, lambda: app.extensions[UPSTREAM].cache.clear()))
    bench_api.init_app(app, settings.bench_endpoints)
    stats.init_app(app)
    init_dashboard(app)
    init_openapi(app)
    init_trust(app, signer, spec, service, lambda: app.extensions[REPLICATION].check_writable())
    init_replication(app, store, spec, topology)  # replication_api.start() runs it
    return app
