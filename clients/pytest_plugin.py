"""pytest plugin: the emulated hierarchy as fixtures for your own integration tests.

Installed with the package (entry point `pytest11`), so nothing needs importing:

    def test_wardrobe_resolves(idr):
        record = idr.resolver.resolve(idr.samples["product"])
        assert record.data("URL")

    @pytest.mark.idr_fault("furniture", kind="outage")
    def test_my_app_survives_an_outage(idr): ...

Fixtures
    idr_hierarchy  session scope: starts the hierarchy once, stops it at the end.
    idr            per test: the same EmulatedHierarchy, with this test's markers applied,
                   a fresh `resolver`, and every fault cleared afterwards.
    idr_resolver   per test: `idr.resolver`.

Options (command line, or the same name without `--` and with `_` in pytest.ini)
    --idr-mode inprocess|wsgi|processes   how nodes run (inprocess)
    --idr-seed demo|none                  the demo supply chain, or admin records only (demo)
    --idr-seed-file PATH                  your own records (JSON), loaded after the seed
    --idr-seed-number N                   the demo data is deterministic from N (2024)
    --idr-topology PATH                   another topology file

Markers
    idr_fault(node, **rule) or idr_fault(node, rule, ...)   fault rules (PUT /_emulator/faults
                                                          fields) on a node, '*' for all
    idr_reset                                             restore the seeded data first
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from clients.harness import MODES, EmulatedHierarchy
from clients.resolver import Resolver
from idcore.topology import load_topology

_OPTIONS: list[tuple[str, str, str | None]] = [
    ("mode", "how the nodes run: inprocess (threads), wsgi (no sockets), processes", "inprocess"),
    ("seed", "demo (the supply-chain demo) or none (admin records only)", "demo"),
    ("seed_file", "JSON file of records to load after the seed", None),
    ("seed_number", "number the demo data derives from", "2024"),
    ("topology", "topology file (default: the packaged one)", None),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """The --idr-* options and their pytest.ini twins."""
    group = parser.getgroup("idr", "identifier-resolution emulator (idr)")
    for name, help_text, default in _OPTIONS:
        flag = "--idr-" + name.replace("_", "-")
        group.addoption(flag, dest=f"idr_{name}", default=None, help=f"{help_text} ({default})")
        parser.addini(f"idr_{name}", help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers."""
    config.addinivalue_line(
        "markers",
        "idr_fault(node, **rule): inject a fault (PUT /_emulator/faults fields) on a node "
        "('*' for every node) for this test",
    )
    config.addinivalue_line("markers", "idr_reset: restore the hierarchy's seeded data first")


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"idr_{name}")
    if value is None:
        value = config.getini(f"idr_{name}")
    return str(value) if value not in (None, "") else None


def hierarchy_from_config(config: pytest.Config, data_dir: Any) -> EmulatedHierarchy:
    """An EmulatedHierarchy (not started) as the options and pytest.ini describe it."""
    mode = _option(config, "mode") or "inprocess"
    if mode not in MODES:
        raise pytest.UsageError(f"--idr-mode {mode!r}: choose one of {', '.join(MODES)}")
    seed = _option(config, "seed") or "demo"
    if seed not in ("demo", "none"):
        raise pytest.UsageError(f"--idr-seed {seed!r}: choose demo or none")
    number = _option(config, "seed_number") or "2024"
    if not number.isdigit():
        raise pytest.UsageError(f"--idr-seed-number {number!r}: give a whole number")
    topology = _option(config, "topology")
    seed_file = _option(config, "seed_file")
    if seed_file is not None:
        seed_file = str(config.rootpath / seed_file)  # relative to the project, as pytest.ini is
    return EmulatedHierarchy(
        mode,
        data_dir,
        topology=load_topology(config.rootpath / topology) if topology else None,
        seed="demo" if seed == "demo" else "none",
        seed_number=int(number),
        seed_file=seed_file,
    )


@pytest.fixture(scope="session")
def idr_hierarchy(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatedHierarchy]:
    """The emulated hierarchy, started once per test session and stopped at its end."""
    hierarchy = hierarchy_from_config(pytestconfig, tmp_path_factory.mktemp("idr"))
    hierarchy.start()
    try:
        yield hierarchy
    finally:
        hierarchy.stop()


def _fault_rules(marker: pytest.Mark) -> tuple[str, list[dict[str, Any]]]:
    if not marker.args or not isinstance(marker.args[0], str):
        raise pytest.UsageError(
            "idr_fault needs the node first: @pytest.mark.idr_fault('furniture', kind='outage')"
        )
    node, rules = marker.args[0], [dict(r) for r in marker.args[1:]]
    if marker.kwargs:
        rules.append(dict(marker.kwargs))
    if not rules:
        raise pytest.UsageError(f"idr_fault({node!r}) names no fault: add kind=... and its fields")
    return node, rules


@pytest.fixture
def idr(
    idr_hierarchy: EmulatedHierarchy, request: pytest.FixtureRequest
) -> Iterator[EmulatedHierarchy]:
    """The hierarchy for one test: its markers applied, a fresh resolver, faults cleared after."""
    if request.node.get_closest_marker("idr_reset") is not None:
        idr_hierarchy.reset()
    idr_hierarchy.fresh_resolver()
    try:
        for marker in request.node.iter_markers("idr_fault"):
            node, rules = _fault_rules(marker)
            idr_hierarchy.add_faults(node, rules)
        yield idr_hierarchy
    finally:
        # Faults from markers and from the test body alike: the next test starts clean.
        idr_hierarchy.clear_faults()


@pytest.fixture
def idr_resolver(idr: EmulatedHierarchy) -> Resolver:
    """A Resolver through the hierarchy's top-level nodes, fresh for this test."""
    return idr.resolver
