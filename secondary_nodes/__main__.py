"""Run one secondary node under gunicorn: `python -m secondary_nodes` (IDR_NODE names it)."""

from idcore.server import serve
from idcore.settings import NodeSettings
from idcore.stats import prepare_multiprocess
from secondary_nodes.app import create_app


def main() -> None:
    """Start the node named by IDR_NODE."""
    settings = NodeSettings()
    spec = settings.spec()
    # Before the app exists: every gunicorn worker then counts into the node's own directory.
    prepare_multiprocess(settings)
    serve(
        create_app(settings),
        spec.host,
        spec.port,
        workers=settings.workers,
        threads=settings.threads,
        name=f"idr-{spec.name}",
    )


if __name__ == "__main__":
    main()
