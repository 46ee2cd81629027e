"""QR labels: `idr label` writes PNG and SVG; `idr scan` reads them back, and scanner input."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clients.labels import read_codes
from clients.launcher import Hierarchy
from tests.support.trace_chains import register_desk, run_idr, top_url

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def desk(running_hierarchy: Hierarchy) -> str:
    """The system-test desk (four nodes, own relations, no template)."""
    return register_desk(running_hierarchy)


def test_png_label_scans_back_to_the_product(
    running_hierarchy: Hierarchy, desk: str, tmp_path: Path
) -> None:
    label = tmp_path / "desk.png"
    made = run_idr(running_hierarchy.data_dir, "label", desk, "-o", str(label))
    assert made.returncode == 0, made.stderr
    assert read_codes(label) == [f"{top_url(running_hierarchy)}/t/{desk}"]

    scanned = run_idr(running_hierarchy.data_dir, "scan", str(label))
    assert scanned.returncode == 0, scanned.stderr
    (line,) = scanned.stdout.splitlines()
    assert line.startswith(f"{desk} | system-test desk | ")
    assert "Chongqing Huamu Furniture" in line and "trust: unknown" in line

    traced = run_idr(running_hierarchy.data_dir, "scan", "--trace", str(label))
    assert traced.returncode == 0, traced.stderr
    assert "trace: 5 records from 4 nodes (complete)" in traced.stdout


def test_svg_label_is_well_formed_and_carries_the_url(
    running_hierarchy: Hierarchy, desk: str, tmp_path: Path
) -> None:
    label = tmp_path / "desk.svg"
    made = run_idr(running_hierarchy.data_dir, "label", desk, "-o", str(label))
    assert made.returncode == 0, made.stderr
    root = ET.parse(label).getroot()
    assert root.tag == f"{SVG}svg"
    assert root.findtext(f"{SVG}title") == desk
    assert root.findtext(f"{SVG}desc") == f"{top_url(running_hierarchy)}/t/{desk}"
    assert root.findtext(f"{SVG}text") == desk
    assert root.find(f"{SVG}path") is not None

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed: the SVG is not rendered and scanned")
    # Render the SVG as a browser would and scan the picture.
    shot = tmp_path / "svg.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=500,500",
            f"--screenshot={shot}",
            label.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    assert read_codes(shot) == [f"{top_url(running_hierarchy)}/t/{desk}"]


def test_scanner_input_gives_one_line_per_code(running_hierarchy: Hierarchy, desk: str) -> None:
    codes = [
        desk,
        "hdl:88.169.1/SYS-PLANK-1",
        f"{top_url(running_hierarchy)}/t/88.170.1/SYS-HINGE-1",
        "88.168.1/SYS-NEVER",
        "",  # a stray Enter
    ]
    done = run_idr(running_hierarchy.data_dir, "scan", "--stdin", stdin="\n".join(codes) + "\n")
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    assert lines[0].startswith(f"{desk} | system-test desk | ")
    assert lines[0].endswith("trust: unknown | trace: 5 records from 4 nodes (complete)")
    assert lines[1].startswith("88.169.1/SYS-PLANK-1 | plank lot | ")
    assert "trace: 2 records from 1 nodes (complete)" in lines[1]
    assert lines[2].startswith("88.170.1/SYS-HINGE-1 | hinge lot | ")
    assert lines[3].startswith("88.168.1/SYS-NEVER | error not_found")
    assert done.returncode == 1  # an unknown code among them


def test_scan_reports_unreadable_files(running_hierarchy: Hierarchy, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (200, 200), 255).save(blank)
    done = run_idr(running_hierarchy.data_dir, "scan", str(blank), str(tmp_path / "missing.png"))
    assert done.returncode == 1
    assert "no QR code found" in done.stderr and "missing.png" in done.stderr
