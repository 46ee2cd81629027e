"""WSGI entry point: `gunicorn resolver.wsgi:app` (settings from IDR_* variables)."""

from resolver.app import create_app

app = create_app()
