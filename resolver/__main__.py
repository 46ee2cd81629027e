"""Run one top-level node under gunicorn: `python -m resolver` (IDR_NODE names it)."""

from idcore.server import serve
from idcore.settings import NodeSettings
from idcore.stats import prepare_multiprocess
from resolver import replication_api
from resolver.app import create_app


def main() -> None:
    """Start the node named by IDR_NODE (default cq-top)."""
    settings = NodeSettings()
    spec = settings.spec()
    # Before the app exists: every gunicorn worker then counts into the node's own directory.
    prepare_multiprocess(settings)
    app = create_app(settings)
    # Before gunicorn forks: the follower thread runs in the master, the workers serve.
    replication_api.start(app)
    serve(
        app,
        spec.host,
        spec.port,
        workers=settings.workers,
        threads=settings.threads,
        name=f"idr-{spec.name}",
    )


if __name__ == "__main__":
    main()
