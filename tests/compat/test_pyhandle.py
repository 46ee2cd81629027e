"""pyhandle 1.5.0, an unmodified third-party Handle client, against the running hierarchy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pyhandle.client.resthandleclient import RESTHandleClient
from pyhandle.handleclient import PyHandleClient
from pyhandle.handleexceptions import (
    GenericHandleError,
    HandleAlreadyExistsException,
    HandleNotFoundException,
)

from clients.launcher import Hierarchy

ENTERPRISE = "88.168.1"
USER = "300:88.168.1/ADMIN"
SECRET = "demo-88.168.1-secret"
PRODUCT = "88.168.1/WARD-2024-000123"


def _client_for_writing(url: str, password: str = SECRET) -> RESTHandleClient:
    # The PyHandleClient facade's instantiate_* return the configured REST client.
    client = PyHandleClient("rest").instantiate_with_username_and_password(url, USER, password)
    assert isinstance(client, RESTHandleClient)
    return client


def _new_handle() -> str:
    return f"{ENTERPRISE}/PYHANDLE-{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture(scope="module")
def furniture(running_hierarchy: Hierarchy) -> str:
    """Base URL of the furniture secondary node, which homes 88.168.1."""
    return running_hierarchy.topology.node("furniture").url


@pytest.fixture(scope="module")
def top(running_hierarchy: Hierarchy) -> str:
    """Base URL of the primary top-level node."""
    return running_hierarchy.topology.top_level[0].url


@pytest.fixture(scope="module")
def writer(furniture: str) -> RESTHandleClient:
    """pyhandle logged in as the demo enterprise's admin (the constructor checks the user)."""
    return _client_for_writing(furniture)


@pytest.fixture
def registered(writer: RESTHandleClient) -> Iterator[str]:
    """A handle pyhandle just registered; deleted afterwards if the test left it."""
    handle = _new_handle()
    assert writer.register_handle(handle, "https://example.com/first") == handle
    yield handle
    if writer.retrieve_handle_record_json(handle) is not None:
        writer.delete_handle(handle)


def test_retrieve_demo_record(writer: RESTHandleClient) -> None:
    record = writer.retrieve_handle_record_json(PRODUCT)
    assert record is not None
    assert record["handle"] == PRODUCT
    types = {v["type"] for v in record["values"]}
    assert {"URL", "HS_ADMIN", "name", "model"} <= types
    assert writer.get_value_from_handle(PRODUCT, "URL").endswith(f"/t/{PRODUCT}")
    assert writer.get_value_from_handle(PRODUCT, "NO_SUCH_TYPE") is None


def test_not_found_is_none_or_handle_not_found(writer: RESTHandleClient) -> None:
    missing = _new_handle()
    assert writer.retrieve_handle_record_json(missing) is None
    with pytest.raises(HandleNotFoundException):
        writer.get_value_from_handle(missing, "URL")
    with pytest.raises(HandleNotFoundException):
        writer.delete_handle(missing)


def test_register_then_read_back(writer: RESTHandleClient, registered: str) -> None:
    record = writer.retrieve_handle_record_json(registered)
    assert record is not None and record["handle"] == registered
    assert writer.get_value_from_handle(registered, "URL") == "https://example.com/first"
    admin = next(v for v in record["values"] if v["type"] == "HS_ADMIN")
    assert admin["data"]["format"] == "admin"


def test_register_existing_handle_raises_already_exists(
    writer: RESTHandleClient, registered: str
) -> None:
    with pytest.raises(HandleAlreadyExistsException):
        writer.register_handle(registered, "https://example.com/other", overwrite=False)
    assert writer.get_value_from_handle(registered, "URL") == "https://example.com/first"


def test_modify_value(writer: RESTHandleClient, registered: str) -> None:
    writer.modify_handle_value(registered, URL="https://example.com/second")
    assert writer.get_value_from_handle(registered, "URL") == "https://example.com/second"
    # Adding a new type through the same call keeps the others.
    writer.modify_handle_value(registered, CHECKSUM="sha256:abc")
    assert writer.get_value_from_handle(registered, "CHECKSUM") == "sha256:abc"
    assert writer.get_value_from_handle(registered, "URL") == "https://example.com/second"


def test_delete_value_then_handle(writer: RESTHandleClient, registered: str) -> None:
    writer.modify_handle_value(registered, CHECKSUM="sha256:abc")
    writer.delete_handle_value(registered, "CHECKSUM")
    assert writer.get_value_from_handle(registered, "CHECKSUM") is None
    assert writer.get_value_from_handle(registered, "URL") == "https://example.com/first"

    assert writer.delete_handle(registered) == registered
    assert writer.retrieve_handle_record_json(registered) is None


@pytest.fixture(scope="module")
def intruder(furniture: str) -> RESTHandleClient:
    """pyhandle with the right user and a wrong password.

    The constructor only checks that the admin handle exists, as against a real server.
    """
    return _client_for_writing(furniture, password="not-the-secret")


def test_wrong_password_cannot_register(
    intruder: RESTHandleClient, writer: RESTHandleClient
) -> None:
    handle = _new_handle()
    with pytest.raises(GenericHandleError) as caught:
        intruder.register_handle(handle, "https://example.com/intruder")
    response = caught.value.response
    assert response.status_code == 403
    assert response.json()["responseCode"] == 403
    assert writer.retrieve_handle_record_json(handle) is None, "nothing was written"


def test_wrong_password_cannot_modify(
    intruder: RESTHandleClient, writer: RESTHandleClient, registered: str
) -> None:
    with pytest.raises(GenericHandleError) as caught:
        intruder.modify_handle_value(registered, URL="https://example.com/intruder")
    assert caught.value.response.status_code == 403
    assert writer.get_value_from_handle(registered, "URL") == "https://example.com/first"


def test_wrong_password_cannot_delete(intruder: RESTHandleClient, writer: RESTHandleClient) -> None:
    with pytest.raises(GenericHandleError) as caught:
        intruder.delete_handle(PRODUCT)
    assert caught.value.response.status_code == 403
    assert writer.retrieve_handle_record_json(PRODUCT) is not None, "nothing was deleted"


def test_read_through_top_level_node(top: str, writer: RESTHandleClient) -> None:
    reader = PyHandleClient("rest").instantiate_for_read_access(handle_server_url=top)
    record = reader.retrieve_handle_record_json(PRODUCT)
    assert record is not None
    assert record["handle"] == PRODUCT
    assert record["values"] == writer.retrieve_handle_record_json(PRODUCT)["values"]

    # Registered at the secondary, then read through the top level for the first time.
    handle = _new_handle()
    writer.register_handle(handle, "https://example.com/via-top")
    try:
        assert reader.get_value_from_handle(handle, "URL") == "https://example.com/via-top"
    finally:
        writer.delete_handle(handle)
