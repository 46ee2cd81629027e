"""`/openapi.json` on both node kinds: complete (every route of `app.url_map`), and true.

schemathesis generates requests from the document against live in-process apps (the
top-level node recursing into in-process secondary nodes) and checks that no answer is
a 5xx and every answer fits the document. Writes carry the node admin's credentials, so
bodies get past authentication into validation, rights and the store.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from clients.transport import mount_apps
from idcore.credentials import SecretVerifier
from idcore.openapi import app_operations
from idcore.settings import NodeSettings
from idcore.sqlite_store import SQLiteStore
from resolver.app import create_app as create_top
from tests.integration.conftest import (
    NODE_ADMIN,
    SECONDARIES,
    TOP,
    TOP_ADMIN,
    LazyNodes,
    Node,
    Seed,
    basic,
)

# Never slowed down by the login throttle while fuzzing; no access log on stdout.
QUIET = {"auth_max_failures": 10**6, "access_log": False}
CHECKS = [not_a_server_error, response_schema_conformance]
# Bounded for `make test` (and repeatable); IDR_FUZZ_EXAMPLES=500 explores further.
EXAMPLES = int(os.environ.get("IDR_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize="IDR_FUZZ_EXAMPLES" not in os.environ,
    database=None,
)
# Fault rules answer 5xx on purpose and a reset reseeds (slow): documented, not fuzzed.
# Rotating keys would change the session's shared key rings (tests/integration/test_trust.py).
NOT_FUZZED = r"^/_emulator/(faults$|reset$|keys/rotate$)"
KNOWN: dict[str, str] = {}


def _document(app: Flask) -> dict[str, Any]:
    resp = app.test_client().get("/openapi.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    body: dict[str, Any] = resp.get_json()
    return body


def _documented(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((path, method) for path, ops in doc["paths"].items() for method in ops)


def _routed(app: Flask) -> list[tuple[str, str]]:
    """Every (path, method) of `app.url_map`, read here independently of idcore.openapi."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":  # Flask's default; no node has a static folder
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
        out |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return sorted(out)


@pytest.mark.parametrize("name", ["cq-top", "furniture"])
def test_every_route_is_documented(make_node: Any, name: str) -> None:
    node: Node = make_node(name, **QUIET)
    doc = _document(node.app)
    assert doc["openapi"].startswith("3.1")
    assert _documented(doc) == _routed(node.app) == app_operations(node.app)
    assert len(_routed(node.app)) >= 22


def test_bench_routes_are_documented_when_served(make_node: Any) -> None:
    node: Node = make_node("furniture", bench_endpoints=True, **QUIET)
    routed = _routed(node.app)
    assert ("/_emulator/bench/fixed", "get") in routed
    assert _documented(_document(node.app)) == routed


def test_schemas_come_from_the_pydantic_models(make_node: Any) -> None:
    schemas = _document(make_node("furniture", **QUIET).app)["components"]["schemas"]
    for model in ("HandleValue", "ValueData", "AdminRef", "FaultRule", "Template"):
        assert model in schemas, model
    assert schemas["AdminRef"]["properties"]["permissions"]["pattern"] == "^[01]{1,12}$"
    assert {"prefix", "name", "secret"} <= set(schemas["EnterpriseRequest"]["required"])


def test_top_level_documents_referral_and_trace(make_node: Any) -> None:
    doc = _document(make_node("cq-top", **QUIET).app)
    resolve = doc["paths"]["/api/handles/{text}"]["get"]
    assert "300" in resolve["responses"]
    assert {p["name"] for p in resolve["parameters"]} >= {"recursion", "doNotRefer", "index"}
    trace = doc["paths"]["/api/trace/{text}"]["get"]["responses"]["200"]
    assert trace["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Trace"}
    assert "Trace_record" in doc["components"]["schemas"]


# --- schemathesis -------------------------------------------------------------------


def _fuzz(app: Flask, headers: dict[str, str]) -> list[str]:
    """Run every documented operation (bar NOT_FUZZED) through schemathesis; the failures."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    ran = 0
    for result in schema.exclude(path_regex=NOT_FUZZED).get_all_operations():
        operation = result.ok()

        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @FUZZ
        @given(case=cases)
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        known = KNOWN.get(operation.label)
        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # one report per operation, go on
            text = f"{operation.label}: {type(exc).__name__}: {exc}"[:3000]
            if known is None or known not in text:
                failures.append(text)
        else:
            if known is not None:
                failures.append(f"{operation.label} no longer fails: remove it from KNOWN")
        ran += 1
    assert ran >= 15, f"only {ran} operations fuzzed"
    return failures


def test_secondary_node_answers_fit_the_document(make_node: Any) -> None:
    node: Node = make_node("furniture", **QUIET)
    failures = _fuzz(node.app, {"Authorization": basic(NODE_ADMIN)})
    assert not failures, "\n\n".join(failures)


def test_top_level_node_answers_fit_the_document(
    make_node: Any, seeds: dict[str, Seed], verifier: SecretVerifier, data_dir: Path
) -> None:
    # A primary as it runs: its store keeps the change log the replication feed serves.
    store = SQLiteStore(data_dir / "cq-top-log.sqlite3", changelog=True)
    seeds[TOP].into(store)
    try:
        top = create_top(NodeSettings(node=TOP, data_dir=data_dir, **QUIET), store)
        top.extensions["idr.records"]._verifier = verifier
        nodes = LazyNodes(SECONDARIES, lambda name: make_node(name, **QUIET))
        topology = NodeSettings(node=TOP).load_topology()
        upstream = top.extensions["idr.upstream"]
        mount_apps(upstream.session, {topology.node(n).url: nodes.wsgi(n) for n in SECONDARIES})
        failures = _fuzz(top, {"Authorization": basic(TOP_ADMIN)})
    finally:
        store.close()
    assert not failures, "\n\n".join(failures)
