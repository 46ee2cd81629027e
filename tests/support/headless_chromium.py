"""Headless Chromium (Debian's `chromium`) for page tests: the DOM after scripts ran, and PNGs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

RUN_TIMEOUT = 60.0
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_binary() -> str:
    """The chromium binary; skip without one, except in CI (which installs it)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it from Debian's packages")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _run(url: str, *extra: str, budget_ms: int) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="idr-chromium-") as profile:
        return subprocess.run(
            [
                chromium_binary(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                *extra,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )


def dump_dom(url: str, budget_ms: int = 2500) -> str:
    """The page's DOM once its scripts (and the fetches they started) have run."""
    result = _run(url, "--dump-dom", budget_ms=budget_ms)
    assert result.returncode == 0 and result.stdout, (
        f"chromium failed on {url}: {result.stderr[-2000:]}"
    )
    return result.stdout


def screenshot(url: str, path: Path, size: str = "1280,1400", budget_ms: int = 2500) -> Path:
    """A PNG of the page at a window size (`width,height`)."""
    result = _run(url, f"--screenshot={path}", f"--window-size={size}", budget_ms=budget_ms)
    assert result.returncode == 0 and path.exists(), (
        f"no screenshot of {url}: {result.stderr[-2000:]}"
    )
    return path
