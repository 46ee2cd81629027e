"""Credentials: what a failed login tells, and the per-client throttle of failed logins."""

from __future__ import annotations

import base64

import pytest

from idcore.credentials import FailureThrottle, parse_basic
from idcore.errors import AuthenticationNeeded, InvalidCredential


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_refuses_after_n_failures_until_the_oldest_ages_out() -> None:
    clock = Clock()
    throttle = FailureThrottle(3, 60.0, clock=clock)
    assert throttle.retry_after("a") == 0
    for n in range(1, 4):
        assert throttle.failed("a") == n
        clock.now += 5
    assert throttle.retry_after("a") == pytest.approx(45.0)  # first failure at 100, now 115
    assert throttle.retry_after("b") == 0
    clock.now = 160.0
    assert throttle.retry_after("a") == 0  # two failures left in the window
    clock.now = 171.0
    assert throttle.retry_after("a") == 0
    assert len(throttle) == 0  # every failure aged out: forgotten


def test_the_throttle_keeps_bounded_memory() -> None:
    throttle = FailureThrottle(5, 60.0, max_clients=100, clock=Clock())
    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    for _ in range(50):
        throttle.failed("10.0.0.1")
    assert len(throttle) == 100
    assert throttle.failed("10.0.0.1") == 5  # at most max_failures stamps per client


def test_a_request_without_an_address_is_not_counted() -> None:
    throttle = FailureThrottle(1, 60.0, clock=Clock())
    assert throttle.failed(None) == 0
    assert throttle.retry_after(None) == 0


@pytest.mark.parametrize(
    "header", ["hunter2", "my-secret-token", "s3cr3t abc", "Basic", "Basic   ", "Basic ????"]
)
def test_unusable_headers_are_not_repeated(header: str) -> None:
    with pytest.raises(InvalidCredential) as info:
        parse_basic(header)
    shown = info.value.message
    assert header.split(" ")[0] not in shown or header.startswith("Basic")
    assert "????" not in shown


def test_a_known_scheme_is_named() -> None:
    with pytest.raises(InvalidCredential, match="'Bearer'"):
        parse_basic("Bearer abc.def")


def test_no_header_is_authentication_needed() -> None:
    with pytest.raises(AuthenticationNeeded):
        parse_basic(None)
    with pytest.raises(AuthenticationNeeded):
        parse_basic("")


def test_a_pyhandle_header_parses() -> None:
    token = base64.b64encode(b"300%3A88.168.1/ADMIN:pa:ss").decode()
    creds = parse_basic(f"Basic {token}")
    assert (str(creds.identity), creds.secret) == ("300:88.168.1/ADMIN", "pa:ss")
