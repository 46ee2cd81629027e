"""The fault engine: matching, seeded decisions that repeat exactly, probabilities, validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idcore.errors import ProtocolError
from idcore.faults import FaultEngine, FaultRule, handle_in_path, parse_rules
from idcore.identifier import parse_handle

PRODUCT = "/api/handles/88.168.1/WARD-2024-000123"

paths = st.sampled_from(
    [
        PRODUCT,
        "/api/handles/88.168.2/DESK-1",
        "/api/handles/88.169.1/LOT-7",
        "/api/handles/88.168",
        "/api/trace/88.168.1/WARD-2024-000123",
        "/t/88.168.1/WARD-2024-000123",
        "/_emulator/health",
    ]
)
requests_ = st.lists(st.tuples(st.sampled_from(["GET", "PUT", "DELETE"]), paths), max_size=60)
rules_ = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["error", "latency", "drop", "outage"]),
            "probability": st.floats(0, 1),
            "latencyMs": st.floats(1, 50),
        },
        optional={
            "seed": st.integers(0, 2**32),
            "route": st.sampled_from(["*", "/api/handles/*", "/api/trace/*"]),
            "prefix": st.sampled_from(["88.168", "88.168.1", "88.169"]),
            "methods": st.just(["GET"]),
            "latencyMaxMs": st.floats(50, 100),
            "limit": st.integers(1, 5),
        },
    ),
    min_size=1,
    max_size=4,
)


def run(rules: list[dict[str, Any]], requests: list[tuple[str, str]]) -> list[Any]:
    """Decisions of a fresh engine for a request sequence, plus its injected-fault log."""
    engine = FaultEngine()
    engine.set(parse_rules(rules))
    decisions = [engine.decide(m, p, handle_in_path(p)) for m, p in requests]
    return [decisions, [e.to_json() for e in engine.log()]]


@settings(max_examples=150, deadline=None)
@given(rules=rules_, requests=requests_)
def test_same_rules_and_seed_over_the_same_requests_decide_the_same(
    rules: list[dict[str, Any]], requests: list[tuple[str, str]]
) -> None:
    assert run(rules, requests) == run(rules, requests)


@settings(max_examples=60, deadline=None)
@given(rules=rules_, requests=requests_)
def test_setting_the_same_rules_again_restarts_every_stream(
    rules: list[dict[str, Any]], requests: list[tuple[str, str]]
) -> None:
    engine = FaultEngine()
    first = []
    engine.set(parse_rules(rules))
    first = [engine.decide(m, p, handle_in_path(p)) for m, p in requests]
    engine.set(parse_rules(rules))
    again = [engine.decide(m, p, handle_in_path(p)) for m, p in requests]
    assert first == again


def test_a_rule_decides_the_same_whatever_other_rules_do() -> None:
    """Each rule draws from its own stream, only for the requests it matches."""
    flaky = {"kind": "error", "probability": 0.5, "seed": 11, "prefix": "88.168"}
    alone = FaultEngine()
    alone.set(parse_rules([flaky]))
    crowded = FaultEngine()
    crowded.set(parse_rules([{"kind": "latency", "latencyMs": 1, "prefix": "88.169"}, flaky]))
    seq = [PRODUCT, "/api/handles/88.169.1/LOT-7"] * 40
    a = [alone.decide("GET", p, handle_in_path(p)) for p in seq]
    b = [crowded.decide("GET", p, handle_in_path(p)) for p in seq]
    assert [d is not None and d.action == "error" for d in a] == [
        d is not None and d.action == "error" for d in b
    ]


def test_a_different_seed_gives_a_different_sequence() -> None:
    seq = [("GET", PRODUCT)] * 64
    one = run([{"kind": "error", "probability": 0.5, "seed": 1}], seq)[0]
    two = run([{"kind": "error", "probability": 0.5, "seed": 2}], seq)[0]
    assert [d is None for d in one] != [d is None for d in two]


@settings(max_examples=40, deadline=None)
@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**32))
def test_the_injected_share_stays_near_the_probability(p: float, seed: int) -> None:
    n = 2000
    decisions = run([{"kind": "error", "probability": p, "seed": seed}], [("GET", PRODUCT)] * n)[0]
    share = sum(d is not None for d in decisions) / n
    # Binomial: 5 standard deviations either side (never flaky for a fixed seed).
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(share - p) < 5 * sigma


@pytest.mark.parametrize("p, expected", [(0.0, 0), (1.0, 50)])
def test_probability_zero_never_and_one_always(p: float, expected: int) -> None:
    decisions = run([{"kind": "drop", "probability": p}], [("GET", PRODUCT)] * 50)[0]
    assert sum(d is not None for d in decisions) == expected


def test_the_controls_are_never_faulted() -> None:
    decisions = run([{"kind": "outage"}], [("GET", "/_emulator/health"), ("PUT", "/_emulator/x")])
    assert decisions[0] == [None, None]


def test_matching_by_route_method_and_prefix() -> None:
    engine = FaultEngine()
    engine.set(
        parse_rules(
            [{"kind": "error", "route": "/api/handles/*", "methods": ["put"], "prefix": "88.168.1"}]
        )
    )
    assert engine.decide("PUT", PRODUCT, handle_in_path(PRODUCT)) is not None
    assert engine.decide("GET", PRODUCT, handle_in_path(PRODUCT)) is None
    other = "/api/handles/88.168.2/DESK-1"
    assert engine.decide("PUT", other, handle_in_path(other)) is None
    derived = "/api/handles/88.168.1.7/X"
    assert engine.decide("PUT", derived, handle_in_path(derived)) is not None
    # The prefix record of the enterprise is about the enterprise's prefix too.
    record = "/api/handles/0.NA/88.168.1"
    assert engine.decide("PUT", record, handle_in_path(record)) is not None
    assert engine.decide("PUT", "/api/trace/88.168.1/X", None) is None


def test_error_and_outage_answers_default_and_configured() -> None:
    engine = FaultEngine()
    engine.set(parse_rules([{"kind": "error"}]))
    d = engine.decide("GET", PRODUCT)
    assert d is not None and (d.action, d.response_code, d.http_status) == ("error", 2, 500)
    engine.set(parse_rules([{"kind": "error", "responseCode": 100}]))
    d = engine.decide("GET", PRODUCT)
    assert d is not None and (d.response_code, d.http_status) == (100, 404)
    engine.set(parse_rules([{"kind": "error", "responseCode": 3, "httpStatus": 429}]))
    d = engine.decide("GET", PRODUCT)
    assert d is not None and (d.response_code, d.http_status) == (3, 429)
    engine.set(parse_rules([{"kind": "outage"}]))
    d = engine.decide("GET", "/anything/at/all")
    assert d is not None and (d.action, d.response_code, d.http_status) == ("error", 3, 503)
    engine.set(parse_rules([{"kind": "outage", "drop": True}]))
    d = engine.decide("GET", "/anything")
    assert d is not None and d.action == "drop"


def test_latency_adds_up_and_random_latency_stays_in_its_range() -> None:
    engine = FaultEngine()
    engine.set(
        parse_rules(
            [
                {"kind": "latency", "latencyMs": 100},
                {"kind": "latency", "latencyMs": 10, "latencyMaxMs": 20, "seed": 3},
                {"kind": "error", "latencyMs": 5},
            ]
        )
    )
    for _ in range(50):
        d = engine.decide("GET", PRODUCT)
        assert d is not None and d.action == "error"
        assert 0.115 <= d.latency <= 0.125
        assert d.fired == ("f1", "f2", "f3")


def test_the_first_terminal_rule_decides_the_answer() -> None:
    engine = FaultEngine()
    engine.set(parse_rules([{"kind": "drop"}, {"kind": "error"}]))
    d = engine.decide("GET", PRODUCT)
    assert d is not None and d.action == "drop" and d.fired == ("f1",)
    assert [r["injected"] for r in engine.rules()] == [1, 0]


def test_a_limit_stops_a_rule_after_so_many_injections() -> None:
    engine = FaultEngine()
    engine.set(parse_rules([{"kind": "error", "limit": 2}]))
    assert [engine.decide("GET", PRODUCT) is not None for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]


def test_rules_list_ids_effective_seeds_and_counters() -> None:
    engine = FaultEngine()
    listed = engine.set(parse_rules([{"kind": "error", "probability": 0.5}, {"kind": "drop"}]))
    assert [r["id"] for r in listed] == ["f1", "f2"]
    unseeded = FaultRule.model_validate({"kind": "error", "probability": 0.5})
    assert listed[0]["seed"] == unseeded.effective_seed  # stable: derived from the rule
    added = engine.add(FaultRule.model_validate({"kind": "latency", "latencyMs": 1, "id": "slow"}))
    assert added["id"] == "slow"
    with pytest.raises(ProtocolError, match="exists already"):
        engine.add(FaultRule.model_validate({"kind": "drop", "id": "slow"}))
    assert engine.remove("f1") and not engine.remove("f1")
    assert [r["id"] for r in engine.rules()] == ["f2", "slow"]
    engine.clear()
    assert engine.rules() == [] and not engine


@pytest.mark.parametrize(
    "body, words",
    [
        ({"kind": "boom"}, "kind"),
        ({"kind": "error", "probability": 1.5}, "probability"),
        ({"kind": "latency"}, "latencyMs"),
        ({"kind": "latency", "latencyMs": 50, "latencyMaxMs": 10}, "latencyMaxMs"),
        ({"kind": "error", "prefix": "88..1"}, "prefix"),
        ({"kind": "error", "httpStatus": 99}, "httpStatus"),
        ({"kind": "error", "colour": "red"}, "colour"),
        (["not an object"], "must be a JSON object"),
    ],
)
def test_bad_rules_are_refused_with_the_field_named(body: Any, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        parse_rules(body)


def test_rules_come_as_one_a_list_or_under_faults() -> None:
    one = {"kind": "error"}
    assert len(parse_rules(one)) == 1
    assert len(parse_rules([one, one])) == 2
    assert len(parse_rules({"faults": [one]})) == 1


def test_handle_in_path() -> None:
    assert handle_in_path(PRODUCT) == parse_handle("88.168.1/WARD-2024-000123")
    assert handle_in_path("/api/handles/88.168") == parse_handle("0.NA/88.168")
    assert handle_in_path("/api/trace/88.168.1/X") == parse_handle("88.168.1/X")
    assert handle_in_path("/api/handles") is None
    assert handle_in_path("/api/handles/") is None
    assert handle_in_path("/api/handles/not a handle") is None
    assert handle_in_path("/_emulator/health") is None
