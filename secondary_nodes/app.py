"""The secondary-node application: enterprise prefixes and identifier records of one industry."""

from __future__ import annotations

from flask import Flask

from idcore.bootstrap import fingerprint, secondary_records, seed_once
from idcore.demo import build_demo
from idcore.emulator_api import emulator_blueprint
from idcore.handle_api import EXTENSION, handles_blueprint
from idcore.identifier import Handle, is_within
from idcore.records import RecordService
from idcore.settings import NodeSettings
from idcore.store import Store, open_store
from idcore.web import register_error_handlers


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
    )
    own = spec.prefix

    def homes(handle: Handle) -> bool:
        return is_within(handle.homed_prefix, own)

    service = RecordService(
        store,
        admin_handle=f"{own}/ADMIN",
        homes=homes,
        describe_home=f"prefix {own} and the prefixes derived from it",
    )
    top = topology.top_level[0].url if topology.top_level else None
    demo = build_demo(topology, settings.seed_number, top) if settings.seed == "demo" else None
    mark = fingerprint(spec.name, own, settings.seed, str(settings.seed_number), str(top))
    seed_once(store, mark, lambda: secondary_records(spec, settings.secret(), demo))

    app = Flask(__name__)
    app.config["IDR_NODE"] = {
        "node": spec.name,
        "role": spec.role,
        "prefix": own,
        "url": settings.url(spec),
    }
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    app.extensions[EXTENSION] = service
    app.extensions["idr.settings"] = settings
    register_error_handlers(app)
    app.register_blueprint(handles_blueprint())
    app.register_blueprint(emulator_blueprint())
    return app
