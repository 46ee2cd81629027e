"""Registering an enterprise on its secondary node: `POST /api/enterprises` (node admin).

One request creates the enterprise's prefix record `0.NA/<prefix>` (HS_ADMIN for the
enterprise admin and for the node admin) and its admin handle `<prefix>/ADMIN` (HS_ADMIN
over itself, the secret as HS_SECKEY at index 300, stored hashed). Both are written or
neither: a failure after the first write removes it again before the answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from idcore.credentials import Identity
from idcore.errors import HandleAlreadyExists, HandleError, InvalidHandle, ProtocolError
from idcore.handle_api import records
from idcore.identifier import NA_PREFIX, Handle, fold, is_within, parse_prefix
from idcore.records import PutRequest, RecordService
from idcore.store import Record
from idcore.values import ALL_PERMISSIONS, SECRET_PERMISSIONS, HandleValue
from idcore.web import json_body, json_response

ENTERPRISE_ADMIN_PERMISSIONS = "110001110011"
"""What an enterprise admin may do through its prefix record: list, read, add/remove/modify
values, create and delete handles; not change admins, derive or delete prefixes."""


class EnterpriseRequest(BaseModel):
    """The body of `POST /api/enterprises`."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(
        min_length=3, max_length=64, description="the enterprise prefix, e.g. 88.168.3"
    )
    name: str = Field(min_length=1, max_length=200, description="enterprise name")
    name_en: str | None = Field(
        None, alias="nameEn", min_length=1, max_length=200, description="English name"
    )
    secret: str = Field(
        min_length=8, max_length=256, description="the enterprise admin's secret (kept hashed)"
    )


class EnterpriseCreated(BaseModel):
    """The answer of `POST /api/enterprises`."""

    responseCode: int = Field(1, description="1: both records were written")
    handle: str = Field(description="the prefix record, 0.NA/<prefix>")
    prefix: str
    admin: str = Field(description="the new identity for HTTP Basic, 300:<prefix>/ADMIN")
    handles: list[str] = Field(description="every record written")


def _string(index: int, vtype: str, text: str) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}}


def _admin(index: int, handle: str, index_of_key: int, permissions: str) -> dict[str, Any]:
    return {
        "index": index,
        "type": "HS_ADMIN",
        "data": {
            "format": "admin",
            "value": {"handle": handle, "index": index_of_key, "permissions": permissions},
        },
    }


def _parse(body: Any) -> EnterpriseRequest:
    if not isinstance(body, dict):
        raise ProtocolError('the body must be {"prefix", "name", "secret"[, "nameEn"]}')
    try:
        return EnterpriseRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise ProtocolError(f"invalid enterprise: {problems}") from None


def register_enterprise(
    service: RecordService, identity: Identity, node_prefix: str, wanted: EnterpriseRequest
) -> list[str]:
    """Write the prefix record and the admin handle of a new enterprise, or neither."""
    prefix = parse_prefix(wanted.prefix)
    if fold(prefix) == fold(node_prefix) or not is_within(prefix, node_prefix):
        raise InvalidHandle(
            f"enterprise prefix {prefix!r} must lie below this node's prefix {node_prefix} "
            f"(e.g. {node_prefix}.3)",
            handle=prefix,
        )
    prefix_handle = Handle(NA_PREFIX, prefix)
    admin_handle = Handle(prefix, "ADMIN")
    for handle in (prefix_handle, admin_handle):
        if service.store.get(handle.key) is not None:
            raise HandleAlreadyExists(
                f"{handle.text!r} already exists: enterprise {prefix} is registered",
                handle=handle.text,
            )
    name = wanted.name if wanted.name_en is None else f"{wanted.name} / {wanted.name_en}"
    prefix_values = [
        _string(2, "DESC", name),
        _admin(100, admin_handle.text, 300, ENTERPRISE_ADMIN_PERMISSIONS),
        _admin(101, identity.handle, identity.index, ALL_PERMISSIONS),
        _string(2000, "enterprise_name", wanted.name),
    ]
    if wanted.name_en is not None:
        prefix_values.append(_string(2001, "enterprise_name_en", wanted.name_en))
    admin_values = [
        _string(2, "DESC", name),
        _admin(100, admin_handle.text, 300, ALL_PERMISSIONS),
        {**_string(300, "HS_SECKEY", wanted.secret), "permissions": SECRET_PERMISSIONS},
    ]
    service.put(_create(prefix_handle, prefix_values), identity)
    try:
        service.put(_create(admin_handle, admin_values), identity)
    except BaseException:
        _undo(service, prefix_handle)
        raise
    return [prefix_handle.text, admin_handle.text]


def _create(handle: Handle, values: list[dict[str, Any]]) -> PutRequest:
    parsed = [HandleValue.model_validate(v) for v in values]
    return PutRequest(
        handle=handle, values=parsed, indexes=None, overwrite=False, mint_suffix=False
    )


def _undo(service: RecordService, handle: Handle) -> None:
    def remove(current: Record | None) -> None:
        return None

    try:
        service.store.mutate(handle.key, remove)
    except Exception:  # the original error is the one to report
        current_app.logger.exception("could not roll back %s", handle.text)


def enterprises_blueprint() -> Blueprint:
    """The enterprise registration route."""
    bp = Blueprint("enterprises", __name__)

    @bp.post("/api/enterprises")
    def add_enterprise() -> Response:
        service = records()
        identity = service.authenticate(request.headers.get("Authorization"))
        wanted = _parse(json_body(request))
        node_prefix = str(current_app.config["IDR_NODE"]["prefix"])
        try:
            written = register_enterprise(service, identity, node_prefix, wanted)
        except HandleError as exc:
            exc.handle = exc.handle or wanted.prefix
            raise
        answer = EnterpriseCreated(
            handle=written[0],
            prefix=written[0].split("/", 1)[1],
            admin=f"300:{written[1]}",
            handles=written,
        )
        return json_response(answer.model_dump(), 201)

    return bp
