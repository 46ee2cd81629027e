"""The secondary-node application: enterprise prefixes and identifier records of one industry."""

from __future__ import annotations

from functools import partial

from flask import Flask

from idcore import bench_api, stats
from idcore.bootstrap import fingerprint, secondary_records, seed_once
from idcore.demo import DEMO_VERSION, build_demo
from idcore.emulator_api import emulator_blueprint, init_app, reseeder
from idcore.handle_api import EXTENSION, apply_limits, handles_blueprint
from idcore.identifier import Handle, is_within
from idcore.records import RecordService
from idcore.settings import NodeSettings
from idcore.signing import sealed
from idcore.store import Store, open_store
from idcore.template import TemplateRegistry
from idcore.trust_api import init_trust, node_signer
from idcore.web import register_error_handlers
from secondary_nodes.batch import batch_blueprint
from secondary_nodes.enterprises import enterprises_blueprint
from secondary_nodes.lookup import lookup_blueprint
from secondary_nodes.openapi import init_openapi
from secondary_nodes.templates import EXTENSION as TEMPLATES
from secondary_nodes.templates import templates_blueprint


def create_app(settings: NodeSettings | None = None, store: Store | None = None) -> Flask:
    """Build a secondary node from its settings; `store` overrides the configured back end."""
    settings = settings or NodeSettings()
    topology = settings.load_topology()
    spec = settings.spec(topology)
    store = store or open_store(
        settings.store,
        namespace=spec.name,
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        appendfsync=settings.redis_appendfsync,
    )
    own = spec.prefix

    def homes(handle: Handle) -> bool:
        return is_within(handle.homed_prefix, own)

    template_registry = TemplateRegistry(store, own)
    signer = node_signer(settings, spec, topology)  # its key ring, created on first start
    service = RecordService(
        store,
        admin_handle=f"{own}/ADMIN",
        homes=homes,
        describe_home=f"prefix {own} and the prefixes derived from it",
        # Every write of a record that names a template at index 1001 is checked.
        validator=template_registry.validate,
        signer=signer,  # then signed: HS_SIGNATURE at index 400
    )
    top = topology.top_level[0].url if topology.top_level else None
    demo = build_demo(topology, settings.seed_number, top) if settings.seed == "demo" else None
    mark = fingerprint(
        spec.name, own, settings.seed, str(settings.seed_number), str(top), DEMO_VERSION
    )
    seed = sealed(partial(secondary_records, spec, settings.secret(), demo), signer)
    seed_once(store, mark, seed)

    app = Flask(__name__)
    app.config["IDR_NODE"] = {
        "node": spec.name,
        "role": spec.role,
        "prefix": own,
        "url": settings.url(spec),
    }
    app.extensions[EXTENSION] = service
    app.extensions[TEMPLATES] = template_registry
    app.extensions["idr.settings"] = settings
    register_error_handlers(app)
    apply_limits(app, settings)  # body size, JSON depth, values, login throttle
    app.register_blueprint(handles_blueprint())
    app.register_blueprint(templates_blueprint())
    app.register_blueprint(batch_blueprint())
    app.register_blueprint(lookup_blueprint())
    app.register_blueprint(enterprises_blueprint())
    app.register_blueprint(emulator_blueprint())
    init_app(app, reseeder(store, mark, seed))
    bench_api.init_app(app, settings.bench_endpoints)
    stats.init_app(app)
    init_openapi(app)
    init_trust(app, signer, spec, service)
    return app
