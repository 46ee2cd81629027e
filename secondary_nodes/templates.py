"""Data templates over HTTP: `GET/PUT/DELETE /api/templates/{name}` and the list (admin writes)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from idcore.errors import HandleAlreadyExists, HandleNotFound, InvalidHandle, ProtocolError
from idcore.handle_api import records
from idcore.identifier import Handle, parse_handle
from idcore.store import Record
from idcore.template import (
    HANDLE_STEM,
    Template,
    TemplateRegistry,
    is_template_name,
    parse_template,
    template_record,
)
from idcore.values import now_iso
from idcore.web import json_body, json_response, query_bool

EXTENSION = "idr.templates"


def templates() -> TemplateRegistry:
    """The TemplateRegistry of the running app."""
    registry: TemplateRegistry = current_app.extensions[EXTENSION]
    return registry


def _checked_name(name: str) -> str:
    if not is_template_name(name):
        raise InvalidHandle(
            f"{name[:80]!r} is not a template name: <family>@<version>, e.g. "
            "furniture.product@1 (lower-case letters, digits, '_', dot-separated)",
            handle=name,
        )
    return name


def _shown(registry: TemplateRegistry, template: Template) -> dict[str, object]:
    return {"handle": registry.handle_of(template.name), **template.to_json()}


def templates_blueprint() -> Blueprint:
    """Routes of the template API on a secondary node."""
    bp = Blueprint("templates", __name__)

    @bp.get("/api/templates")
    def list_templates() -> Response:
        registry = templates()
        found = registry.all()
        return json_response(
            {
                "responseCode": 1,
                "prefix": registry.node_prefix,
                "totalCount": len(found),
                "templates": [_shown(registry, t) for t in found],
            }
        )

    @bp.get("/api/templates/<path:name>")
    def get_template(name: str) -> Response:
        registry = templates()
        template = registry.lookup(_checked_name(name))
        if template is None:
            raise HandleNotFound(
                f"no template {name!r} on this node: GET /api/templates lists them",
                handle=registry.handle_of(name),
            )
        return json_response(
            {
                "responseCode": 1,
                "handle": registry.handle_of(name),
                "template": template.to_json(),
            }
        )

    @bp.put("/api/templates/<path:name>")
    def put_template(name: str) -> Response:
        registry = templates()
        service = records()
        _checked_name(name)
        identity = service.authenticate(request.headers.get("Authorization"))
        body = json_body(request)
        if not isinstance(body, dict):
            raise ProtocolError("the body must be the template JSON object")
        named = body.get("name", name)
        if named != name:
            raise ProtocolError(
                f"body names template {named!r} but the path names {name!r}: they must match"
            )
        template = parse_template({**body, "name": name})
        overwrite = query_bool(request, "overwrite", True)
        handle = parse_handle(registry.handle_of(name))
        created = False

        def change(current: Record | None) -> Record:
            nonlocal created
            service.require(identity, "addHandle", handle, current)
            if current is not None and not overwrite:
                raise HandleAlreadyExists(
                    f"template {name!r} already exists (overwrite=false)", handle=handle.text
                )
            created = current is None
            return service.sign(template_record(registry.node_prefix, template, now_iso()))

        service.store.mutate(handle.key, change)
        return json_response(
            {"responseCode": 1, "handle": handle.text, "name": name}, 201 if created else 200
        )

    @bp.delete("/api/templates/<path:name>")
    def delete_template(name: str) -> Response:
        registry = templates()
        service = records()
        _checked_name(name)
        identity = service.authenticate(request.headers.get("Authorization"))
        handle = Handle(registry.node_prefix, HANDLE_STEM + name)

        def change(current: Record | None) -> None:
            if current is None:
                raise HandleNotFound(f"no template {name!r} on this node", handle=handle.text)
            service.require(identity, "deleteHandle", handle, current)
            return None

        service.store.mutate(handle.key, change)
        return json_response({"responseCode": 1, "handle": handle.text, "name": name})

    return bp
