"""The consumer page `/t/<id>` in headless Chromium, as a phone would show it, in both languages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from PIL import Image

from clients.launcher import Hierarchy
from tests.support.trace_chains import info, register_desk, top_url

CHROMIUM = shutil.which("chromium")
PHONE = "390,844"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium(url: str, tmp_path: Path, *, screenshot: Path | None = None) -> str:
    """The DOM after load (--dump-dom), or a phone-sized screenshot; nothing from the network."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={PHONE}",
    ]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def desk(running_hierarchy: Hierarchy) -> str:
    """The system-test desk (four nodes, own relations, no template)."""
    return register_desk(running_hierarchy)


def in_order(page: str, *texts: str) -> bool:
    """True if every text occurs in the page, each after the one before."""
    at = 0
    for text in texts:
        found = page.find(text, at)
        if found < 0:
            return False
        at = found + len(text)
    return True


def test_the_page_tells_the_chain_in_chinese(
    running_hierarchy: Hierarchy, desk: str, tmp_path: Path
) -> None:
    url = f"{top_url(running_hierarchy)}/t/{desk}?lang=zh"
    dom = chromium(url, tmp_path)
    assert '<html lang="zh-CN">' in dom
    assert "演示数据" in dom and "系统测试书桌" in dom
    # The timeline runs from raw material to inspection, each record with its node.
    assert in_order(dom, "原材料", "log lot", "hinge lot", "质量检验", "甲醛释放量检测")
    assert in_order(
        dom, "依据标准", "GB 18584-2001", "检验结论", "合格", "证书编号", "SYS-CERT-0001"
    )
    assert "木材与人造板二级节点 88.169" in dom and "检验检测二级节点 88.171" in dom
    shot = tmp_path / "page-zh.png"
    chromium(url, tmp_path, screenshot=shot)
    with Image.open(shot) as image:
        assert image.size == (390, 844)


def test_the_page_tells_the_chain_in_english(
    running_hierarchy: Hierarchy, desk: str, tmp_path: Path
) -> None:
    url = f"{top_url(running_hierarchy)}/t/{desk}?lang=en"
    dom = chromium(url, tmp_path)
    assert '<html lang="en">' in dom
    assert "DEMO DATA" in dom and "system-test desk" in dom and "系统测试书桌" not in dom
    assert in_order(dom, "Raw material", "log lot", "hinge lot", "Inspection", "formaldehyde test")
    assert in_order(dom, "Standard", "GB 18584-2001", "Result", "pass", "Certificate")
    assert "timber and panels node 88.169" in dom
    chromium(url, tmp_path, screenshot=tmp_path / "page-en.png")


def test_the_page_works_offline_and_is_small(running_hierarchy: Hierarchy, desk: str) -> None:
    resp = requests.get(f"{top_url(running_hierarchy)}/t/{desk}", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    html = resp.text
    for external in ("<script", "<link", "src=", "@import", "url("):
        assert external not in html, external
    assert len(resp.content) < 64_000


def test_invalid_and_unknown_codes_get_pages(running_hierarchy: Hierarchy, tmp_path: Path) -> None:
    top = top_url(running_hierarchy)
    bad = requests.get(f"{top}/t/88.168.1/", headers={"Accept-Language": "en"}, timeout=10)
    assert bad.status_code == 400 and "Not a valid identifier" in bad.text
    unknown = requests.get(f"{top}/t/88.168.1/NEVER", headers={"Accept-Language": "zh"}, timeout=10)
    assert unknown.status_code == 404 and "未找到该标识" in unknown.text
    assert "未找到该标识" in chromium(f"{top}/t/88.168.1/NEVER?lang=zh", tmp_path)


def test_the_demo_product_page(running_hierarchy: Hierarchy, tmp_path: Path) -> None:
    sample = info(running_hierarchy)["samples"]["product"]
    trace = requests.get(f"{top_url(running_hierarchy)}/api/trace/{sample}", timeout=10).json()
    assert len(trace["records"]) >= 15 and trace["complete"]
    url = f"{top_url(running_hierarchy)}/t/{sample}"
    zh = chromium(f"{url}?lang=zh", tmp_path)
    assert in_order(zh, "原材料", "工序", "质量检验")
    assert "GB 18584" in zh and "合格" in zh
    en = chromium(f"{url}?lang=en", tmp_path)
    assert in_order(en, "Raw material", "Process steps", "Inspection")
    chromium(f"{url}?lang=zh", tmp_path, screenshot=tmp_path / "demo-zh.png")
    chromium(f"{url}?lang=en", tmp_path, screenshot=tmp_path / "demo-en.png")
