"""The examples/ project, a user's own test suite, passes with the pytest plugin in each mode."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 180


def run_examples(*args: str) -> subprocess.CompletedProcess[str]:
    """pytest on examples/ in a fresh interpreter, as a user would run their own suite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDR_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("mode", ["inprocess", "processes"])
def test_examples_pass(mode: str) -> None:
    result = run_examples("--idr-mode", mode)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 9, output
    assert not re.search(r"\d+ (failed|errors?)\b", output), output
