"""One exception tree for nodes and clients, each class tied to a Handle response code.

HandleError
├── ProtocolError (4)            ├── HandleNotFound (100, also LookupError)
├── ServerError (2)              ├── HandleAlreadyExists (101)
├── ServerBusy (3)               ├── InvalidHandle (102, also ValueError)
├── OperationNotSupported (5)    ├── ValuesNotFound (200)
├── ServerReadOnly (7)           ├── ValueAlreadyExists (201)
├── NotResponsible (301)         ├── InvalidValue (202, also ValueError)
├── ServiceReferral (302)        └── Referral (303)
├── AuthError (also PermissionError)
│   ├── InvalidAdmin (400)
│   ├── InsufficientPermissions (401)
│   ├── AuthenticationNeeded (402)
│   ├── AuthenticationFailed (403)
│   └── InvalidCredential (404)
└── TransportError: the node could not be asked at all
    ├── NodeUnreachable (also ConnectionError)
    └── NodeTimeout (also TimeoutError)
"""

from __future__ import annotations

from typing import Any, ClassVar

from idcore.codes import ResponseCode


class HandleError(Exception):
    """Root of every error this project raises about a handle or a node."""

    code: ClassVar[ResponseCode] = ResponseCode.ERROR

    def __init__(self, message: str, handle: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.handle = handle
        self.details = details

    @property
    def http_status(self) -> int:
        """HTTP status of the answer that carries this error."""
        return self.code.http_status

    def to_json(self) -> dict[str, Any]:
        """The Handle JSON error body."""
        body: dict[str, Any] = {"responseCode": int(self.code)}
        if self.handle is not None:
            body["handle"] = self.handle
        body["message"] = self.message
        body.update(self.details)
        return body


class ServerError(HandleError):
    """Something failed inside the node (responseCode 2)."""

    code = ResponseCode.ERROR


class ServerBusy(HandleError):
    """The node refuses work for now (responseCode 3)."""

    code = ResponseCode.SERVER_TOO_BUSY


class ProtocolError(HandleError):
    """The request itself is malformed: bad JSON, path, parameter or media type (4)."""

    code = ResponseCode.PROTOCOL_ERROR


class OperationNotSupported(HandleError):
    """The node does not offer this operation (5)."""

    code = ResponseCode.OPERATION_NOT_SUPPORTED


class ServerReadOnly(HandleError):
    """The node is a read-only backup (7)."""

    code = ResponseCode.SERVER_BACKUP


class HandleNotFound(HandleError, LookupError):
    """No record exists under this handle (100)."""

    code = ResponseCode.HANDLE_NOT_FOUND


class HandleAlreadyExists(HandleError):
    """A create met an existing record (101)."""

    code = ResponseCode.HANDLE_ALREADY_EXISTS


class InvalidHandle(HandleError, ValueError):
    """The handle breaks the identifier syntax (102)."""

    code = ResponseCode.INVALID_HANDLE


class ValuesNotFound(HandleError):
    """The record has no value matching the request (200)."""

    code = ResponseCode.VALUES_NOT_FOUND


class ValueAlreadyExists(HandleError):
    """An add without overwrite met an existing index (201)."""

    code = ResponseCode.VALUE_ALREADY_EXISTS


class InvalidValue(HandleError, ValueError):
    """A value is malformed or breaks a limit (202)."""

    code = ResponseCode.INVALID_VALUE


class NotResponsible(HandleError):
    """This node does not home the handle's prefix (301)."""

    code = ResponseCode.SERVER_NOT_RESPONSIBLE


class Referral(HandleError):
    """Ask another node: the answer carries the HS_SITE values of the prefix (303)."""

    code = ResponseCode.PREFIX_REFERRAL


class ServiceReferral(HandleError):
    """Ask another service: the answer names where the handle is served (302)."""

    code = ResponseCode.SERVICE_REFERRAL


class AuthError(HandleError, PermissionError):
    """Root of authentication and authorisation failures."""

    code = ResponseCode.INVALID_ADMIN


class InvalidAdmin(AuthError):
    """The admin named is not valid for this operation (400)."""

    code = ResponseCode.INVALID_ADMIN


class InsufficientPermissions(AuthError):
    """The identity is known but lacks the right (401)."""

    code = ResponseCode.INSUFFICIENT_PERMISSIONS


class AuthenticationNeeded(AuthError):
    """A write came without credentials (402)."""

    code = ResponseCode.AUTHENTICATION_NEEDED


class AuthenticationFailed(AuthError):
    """The secret did not match (403)."""

    code = ResponseCode.AUTHENTICATION_FAILED


class InvalidCredential(AuthError):
    """The credential could not be read or names no usable key (404)."""

    code = ResponseCode.INVALID_CREDENTIAL


class TransportError(HandleError):
    """The node could not be asked: carries the node's URL."""

    code = ResponseCode.ERROR

    def __init__(self, message: str, url: str, handle: str | None = None) -> None:
        super().__init__(message, handle)
        self.url = url


class NodeUnreachable(TransportError, ConnectionError):
    """No connection could be made to the node."""


class NodeTimeout(TransportError, TimeoutError):
    """The node did not answer in time."""


_BY_CODE: dict[ResponseCode, type[HandleError]] = {
    cls.code: cls
    for cls in (
        ServerError,
        ServerBusy,
        ProtocolError,
        OperationNotSupported,
        ServerReadOnly,
        HandleNotFound,
        HandleAlreadyExists,
        InvalidHandle,
        ValuesNotFound,
        ValueAlreadyExists,
        InvalidValue,
        NotResponsible,
        ServiceReferral,
        Referral,
        InvalidAdmin,
        InsufficientPermissions,
        AuthenticationNeeded,
        AuthenticationFailed,
        InvalidCredential,
    )
}


def error_for_code(code: int) -> type[HandleError]:
    """The exception class a client raises for a response code."""
    try:
        return _BY_CODE[ResponseCode(code)]
    except (ValueError, KeyError):
        # An unknown code, or one that is not an error (1): a generic HandleError.
        return HandleError
