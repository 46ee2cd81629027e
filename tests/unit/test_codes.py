"""Response codes, their HTTP statuses (PROTOCOL.md's table) and the exception for each code."""

from __future__ import annotations

import pytest

from idcore import errors
from idcore.codes import ResponseCode
from idcore.errors import HandleError, error_for_code

# PROTOCOL.md, "responseCode to HTTP status", row by row. 200 (values not found) is
# HTTP 200 on a resolve (tested in the integration suite) and 400 anywhere else.
PROTOCOL_TABLE = {
    1: 200,
    2: 500,
    3: 503,
    4: 400,
    5: 501,
    7: 503,
    100: 404,
    101: 409,
    102: 400,
    200: 400,
    201: 409,
    202: 400,
    301: 400,
    302: 300,
    303: 300,
    400: 403,
    401: 403,
    402: 401,
    403: 403,
    404: 403,
}

ERROR_CODES = [code for code in PROTOCOL_TABLE if code != 1]


def test_every_code_of_the_protocol_exists_and_no_other() -> None:
    assert {int(c) for c in ResponseCode} == set(PROTOCOL_TABLE)


@pytest.mark.parametrize(("code", "status"), sorted(PROTOCOL_TABLE.items()))
def test_http_status_follows_the_protocol_table(code: int, status: int) -> None:
    assert ResponseCode(code).http_status == status


@pytest.mark.parametrize("code", ERROR_CODES)
def test_error_for_code_round_trips(code: int) -> None:
    cls = error_for_code(code)
    assert issubclass(cls, HandleError)
    assert cls.code == code
    error = cls("something went wrong", handle="88.168.1/X")
    assert error.http_status == PROTOCOL_TABLE[code]
    body = error.to_json()
    assert body["responseCode"] == code
    assert body["handle"] == "88.168.1/X"
    assert body["message"] == "something went wrong"


def test_every_error_class_is_found_again_by_its_code() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type)
        and issubclass(obj, HandleError)
        and obj not in (HandleError, errors.AuthError)
        and not issubclass(obj, errors.TransportError)
    ]
    assert classes
    for cls in classes:
        assert error_for_code(int(cls.code)) is cls, cls


@pytest.mark.parametrize("code", [1, 0, -1, 6, 99, 999, 2**31])
def test_error_for_code_never_fails_on_success_or_unknown_codes(code: int) -> None:
    cls = error_for_code(code)
    assert issubclass(cls, HandleError)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.HandleNotFound, LookupError),
        (errors.InvalidHandle, ValueError),
        (errors.InvalidValue, ValueError),
        (errors.AuthenticationFailed, PermissionError),
        (errors.NodeUnreachable, ConnectionError),
        (errors.NodeTimeout, TimeoutError),
    ],
)
def test_errors_are_also_the_builtin_a_python_caller_expects(
    cls: type[HandleError], builtin: type[Exception]
) -> None:
    assert issubclass(cls, builtin)


def test_error_json_omits_a_missing_handle_and_carries_details() -> None:
    body = errors.InvalidValue("bad", problems=["values[0]: x"]).to_json()
    assert body == {"responseCode": 202, "message": "bad", "problems": ["values[0]: x"]}


def test_transport_errors_carry_the_node_url() -> None:
    error = errors.NodeUnreachable("down", url="http://127.0.0.1:8101", handle="88.168.1/X")
    assert error.url == "http://127.0.0.1:8101"
    assert error.to_json()["handle"] == "88.168.1/X"
