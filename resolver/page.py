"""The consumer page `GET /t/<id>`: what a phone shows after scanning a product's code.

Server-rendered from the in-process trace (resolver/trace_api.py), in Chinese or English,
with inline CSS and no external asset, so it works offline. Invalid and unknown codes get
a page of their own with HTTP 400 and 404.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, request
from werkzeug.wrappers import Response

from clients.trace_result import Trace, TraceRecord, name_code, parse_time
from clients.trust import Verdict, summarize
from idcore.errors import HandleError
from idcore.identifier import parse_handle
from idcore.stages import STAGE_ORDER, STAGE_TITLES
from idcore.store import Record
from idcore.template import Template, template_from_record, template_handle
from resolver.trace_api import NodeFetch, server_trace

Templates = dict[tuple[str, str], Template]
"""(node URL, template name) → the template that node holds."""

Lang = str  # "zh" or "en"
LANGS = ("zh", "en")
PAGE_DEADLINE = 4.0
TEMPLATE_WAIT = 1.0
MAX_ITEMS = 8

_CJK = re.compile(r"[\u3400-\u9fff]")

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "site": "工业互联网标识解析 · 重庆国家顶级节点",
        "demo": "演示数据",
        "demo_note": "演示数据：企业、产品和标识均为虚构，与真实国家系统无关。",
        "summary": "追溯到 {records} 条记录，来自 {nodes} 个二级节点，用时 {ms} 毫秒",
        "partial": "部分记录暂时无法获取：",
        "served": "解析节点",
        "enterprise": "企业",
        "code": "标识",
        "timeline": "从原料到检验",
        "standard": "依据标准",
        "result": "检验结论",
        "certificate": "证书编号",
        "missing": "缺失",
        "bad_title": "无效的标识",
        "bad_text": "扫描到的编码不是有效的工业互联网标识。",
        "unknown_title": "未找到该标识",
        "unknown_text": "国家顶级节点查不到这个标识：它可能尚未注册，或已被注销。",
        "down_title": "暂时无法查询",
        "down_text": "保存该标识的二级节点暂时无法访问，请稍后再试。",
        "raw": "机器可读数据",
        "other_lang": "English",
        "trust_trusted": "✓ 可信：签名已验证",
        "trust_untrusted": "✗ 不可信：签名校验失败",
        "trust_unknown": "? 未验证：无签名",
        "trust_summary": "签名验证：{trusted} 条可信，{untrusted} 条不可信，{unknown} 条未验证",
    },
    "en": {
        "site": "Industrial identifier resolution · Chongqing national top-level node",
        "demo": "DEMO DATA",
        "demo_note": "Demo data: enterprises, products and identifiers are invented; "
        "nothing here comes from the real national system.",
        "summary": "{records} records from {nodes} secondary nodes, traced in {ms} ms",
        "partial": "Some records could not be fetched right now:",
        "served": "Served by",
        "enterprise": "Enterprise",
        "code": "Identifier",
        "timeline": "From raw material to inspection",
        "standard": "Standard",
        "result": "Result",
        "certificate": "Certificate",
        "missing": "missing",
        "bad_title": "Not a valid identifier",
        "bad_text": "The scanned code is not an industrial-internet identifier.",
        "unknown_title": "Identifier not found",
        "unknown_text": "The national top-level node does not know this identifier: "
        "it may not be registered yet, or it was withdrawn.",
        "down_title": "Cannot look it up right now",
        "down_text": "The secondary node that holds this identifier is unreachable. "
        "Please try again later.",
        "raw": "machine-readable data",
        "other_lang": "中文",
        "trust_trusted": "✓ Trusted: signature verified",
        "trust_untrusted": "✗ UNTRUSTED: signature check failed",
        "trust_unknown": "? Unverified: not signed",
        "trust_summary": (
            "Signatures: {trusted} trusted, {untrusted} untrusted, {unknown} unverified"
        ),
    },
}

REASONS: dict[str, tuple[str, str]] = {
    "not_found": ("未找到", "not found"),
    "invalid": ("不是有效标识", "not a valid identifier"),
    "error": ("节点报错", "node error"),
    "unreachable": ("节点无法访问", "node unreachable"),
    "timeout": ("节点超时", "node timed out"),
    "deadline": ("超出查询时限", "not answered in time"),
    "depth_limit": ("超出追溯深度", "beyond the depth limit"),
    "record_limit": ("超出记录上限", "beyond the record limit"),
}

NODE_NAMES: dict[str, tuple[str, str]] = {
    "furniture": ("家具二级节点", "furniture node"),
    "timber": ("木材与人造板二级节点", "timber and panels node"),
    "materials": ("五金与涂料二级节点", "hardware and coatings node"),
    "inspection": ("检验检测二级节点", "inspection node"),
    "power": ("发电装备二级节点", "power equipment node"),
    "auto": ("汽车与电池二级节点", "automotive node"),
    "cq-top": ("重庆国家顶级节点", "Chongqing top-level node"),
    "cd-backup": ("成都灾备节点", "Chengdu backup node"),
}

# Why a record is not trusted (clients/trust.py reasons), for the badge.
TRUST_REASONS: dict[str, tuple[str, str]] = {
    "digest mismatch": (
        "数据与签名不符，可能被篡改",
        "data differs from what was signed (tampered)",
    ),
    "bad signature": ("签名无效", "the signature is invalid"),
    "key not delegated for this prefix": (
        "签名密钥未获该前缀授权",
        "signed by a key not delegated for this prefix",
    ),
    "anchor mismatch": ("与国家顶级节点密钥不符", "not signed by the top-level key"),
    "malformed signature": ("签名格式错误", "malformed signature"),
    "signed for another handle": ("签名属于其他标识", "the signature is for another identifier"),
    "no signature": ("记录没有签名", "the record is not signed"),
    "prefix record unavailable": ("暂时无法获取前缀记录", "the prefix record is unavailable"),
}

# Labels of common item codes; unknown codes are shown as written, underscores as spaces.
ITEM_LABELS: dict[str, tuple[str, str]] = {
    "model": ("型号", "Model"),
    "manufacturer": ("制造商", "Manufacturer"),
    "produced_at": ("生产日期", "Produced"),
    "production_date": ("生产日期", "Produced"),
    "batch": ("批次", "Batch"),
    "lot": ("批号", "Lot"),
    "quantity": ("数量", "Quantity"),
    "species": ("树种", "Species"),
    "harvest_region": ("采伐地", "Harvest region"),
    "harvest_date": ("采伐日期", "Harvested"),
    "fsc_certificate": ("FSC 证书", "FSC certificate"),
    "fsc_cert": ("FSC 证书", "FSC certificate"),
    "thickness": ("厚度", "Thickness"),
    "grade": ("等级", "Grade"),
    "material": ("材质", "Material"),
    "color": ("颜色", "Colour"),
    "voc_content": ("VOC 含量", "VOC content"),
    "station": ("工位", "Station"),
    "operator": ("操作员", "Operator"),
    "start": ("开始", "Start"),
    "end": ("结束", "End"),
    "started_at": ("开始", "Start"),
    "ended_at": ("结束", "End"),
    "parameters": ("工艺参数", "Parameters"),
    "step": ("工序", "Step"),
    "lab": ("检测机构", "Laboratory"),
    "date": ("日期", "Date"),
    "measured": ("实测", "Measured"),
    "dimensions": ("尺寸", "Dimensions"),
    "origin": ("产地", "Origin"),
    "supplier": ("供应商", "Supplier"),
}


def pick_lang() -> Lang:
    """`?lang=zh|en`, else the best of Accept-Language, else Chinese."""
    asked = (request.args.get("lang") or "").lower()
    if asked in LANGS:
        return asked
    best = request.accept_languages.best_match(list(LANGS))
    return best if best in LANGS else "zh"


def pick(text: Any, lang: Lang) -> str:
    """One side of a bilingual 'zh / en' value; other values as they are."""
    shown = text if isinstance(text, str) else ("" if text is None else str(text))
    if " / " in shown:
        left, right = shown.split(" / ", 1)
        if _CJK.search(left) and not _CJK.search(right):
            return right if lang == "en" else left
    return shown


def _when(text: str | None) -> str:
    moment = parse_time(text)
    if moment is None or text is None:
        return ""
    return text[:10] if len(text.strip()) <= 10 else moment.strftime("%Y-%m-%d %H:%M")


def fetch_templates(app: Flask, result: Trace) -> Templates:
    """The templates the traced records name, fetched in parallel from their nodes.

    Templates are identifiers (`<node prefix>/TEMPLATE.<name>`); they only label items,
    so any that cannot be fetched within TEMPLATE_WAIT seconds are simply left out.
    """
    wanted: dict[tuple[str, str], str] = {}
    for rec in result.records:
        info = result.nodes.get(rec.node)
        if rec.template and info is not None and info.prefix:
            wanted.setdefault((rec.node, rec.template), template_handle(info.prefix, rec.template))
    if not wanted:
        return {}
    fetch = NodeFetch(app)
    pool = ThreadPoolExecutor(max_workers=min(8, len(wanted)), thread_name_prefix="idr-tpl")
    try:
        futures: dict[tuple[str, str], Future[Template]] = {
            key: pool.submit(_template, fetch, handle) for key, handle in wanted.items()
        }
        wait(futures.values(), timeout=TEMPLATE_WAIT)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {key: f.result() for key, f in futures.items() if f.done() and f.exception() is None}


def _template(fetch: NodeFetch, handle: str) -> Template:
    values, _ = fetch(handle)
    return template_from_record(Record(handle, values))


def _label(code: str, lang: Lang, template: Template | None = None) -> str:
    item = template.item(code) if template is not None else None
    if item is not None:
        return item.name_zh if lang == "zh" else item.name_en
    known = ITEM_LABELS.get(code)
    if known:
        return known[0] if lang == "zh" else known[1]
    return code.replace("_", " ")


def _shown(code: str, value: Any, lang: Lang, template: Template | None) -> str:
    item = template.item(code) if template is not None else None
    text = pick(value, lang)
    return f"{text} {item.unit}" if item is not None and item.unit else text


def _node_label(result: Trace, url: str, lang: Lang) -> str:
    info = result.nodes.get(url)
    name = info.name if info else None
    known = NODE_NAMES.get(name or "")
    label = (known[0] if lang == "zh" else known[1]) if known else (name or url)
    return f"{label} {info.prefix}" if info and info.prefix else label


def _inspection(items: dict[str, Any], lang: Lang) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for code, value in items.items():
        low = code.lower()
        for key, needle in (("standard", "standard"), ("result", "result"), ("cert", "cert")):
            if needle in low and key not in found:
                found[key] = pick(value, lang)
    if not found:
        return None
    result = str(found.get("result", "")).lower()
    found["ok"] = any(w in result for w in ("pass", "qualified", "conform", "合格", "符合"))
    found["fail"] = any(w in result for w in ("fail", "不合格"))
    return found


def _entry(result: Trace, rec: TraceRecord, lang: Lang, templates: Templates) -> dict[str, Any]:
    template = templates.get((rec.node, rec.template or ""))
    ent = result.enterprise_of(rec)
    check = _inspection(rec.items, lang) if rec.stage == "inspection" else None
    skip = {"name", "name_en", "name_zh", name_code(rec.items) or "name"}
    if ent is not None:
        # Items that only repeat the enterprise line (manufacturer, lab) are left out.
        said = pick(ent.label(lang), lang)
        skip |= {c for c, v in rec.items.items() if isinstance(v, str) and pick(v, lang) == said}
    if check is not None:
        skip |= {
            c for c in rec.items if any(w in c.lower() for w in ("standard", "result", "cert"))
        }
    items = [
        (_label(code, lang, template), _shown(code, value, lang, template))
        for code, value in rec.items.items()
        if code not in skip and isinstance(value, str | int | float) and str(value)
    ]
    kind = ""
    if template is not None:
        kind = template.title_zh if lang == "zh" else template.title_en
    return {
        "title": pick(rec.title(lang), lang),
        "kind": kind,
        "handle": rec.handle,
        "when": _when(rec.time),
        "enterprise": pick(ent.label(lang), lang) if ent else (rec.enterprise or ""),
        "node": _node_label(result, rec.node, lang),
        "items": items[:MAX_ITEMS],
        "inspection": check,
        "trust": _badge(rec.trust, lang),
    }


def _badge(verdict: Verdict | None, lang: Lang) -> dict[str, str]:
    """The trust badge of a record: its status, a label and, when not trusted, why."""
    status = verdict.status if verdict is not None else "unknown"
    reason = verdict.reason if verdict is not None else None
    known = TRUST_REASONS.get(reason or "")
    why = (known[0] if lang == "zh" else known[1]) if known else (reason or "")
    return {
        "status": status,
        "label": TEXT[lang][f"trust_{status}"],
        "reason": "" if status == "trusted" else why,
    }


def page_model(result: Trace, lang: Lang, templates: Templates | None = None) -> dict[str, Any]:
    """Everything the trace template shows, in one language."""
    templates = templates or {}
    text = TEXT[lang]
    root = result.root_record
    assert root is not None, "the page is only rendered for a trace whose root was fetched"
    stages = []
    for stage in STAGE_ORDER:
        members = [r for r in result.records if r.stage == stage and r is not root]
        members.sort(key=lambda r: (r.time is None, _when(r.time), r.wave))
        if members:
            stages.append(
                {
                    "stage": stage,
                    "title": STAGE_TITLES[stage][0 if lang == "zh" else 1],
                    "entries": [_entry(result, r, lang, templates) for r in members],
                }
            )
    return {
        "lang": lang,
        "t": text,
        "product": _entry(result, root, lang, templates),
        "stages": stages,
        "summary": text["summary"].format(
            records=len(result.records),
            nodes=len({r.node for r in result.records}),
            ms=round(result.elapsed * 1000),
        ),
        "missing": [
            {"handle": e.handle, "why": REASONS[e.reason][0 if lang == "zh" else 1]}
            for e in result.errors
        ],
        "complete": result.complete,
        "json_url": f"/api/trace/{result.root}",
        "trust": {
            **result.trust_summary(),
            "text": text["trust_summary"].format(**summarize([r.trust for r in result.records])),
        },
    }


def _error_page(status: int, kind: str, code: str, lang: Lang) -> tuple[str, int]:
    text = TEXT[lang]
    body = render_template(
        "trace_error.html",
        lang=lang,
        t=text,
        title=text[f"{kind}_title"],
        message=text[f"{kind}_text"],
        code=code,
        status=status,
    )
    return body, status


def page_blueprint() -> Blueprint:
    """The consumer page route."""
    bp = Blueprint("page", __name__, template_folder="templates")

    @bp.get("/t/", defaults={"text": ""})
    @bp.get("/t/<path:text>")
    def consumer_page(text: str) -> Response | tuple[str, int]:
        lang = pick_lang()
        try:
            parse_handle(text)
        except HandleError:
            return _error_page(400, "bad", text, lang)
        result = server_trace(current_app, text, deadline=PAGE_DEADLINE)
        failure = result.root_error
        if failure is not None:
            # An identifier under a prefix nobody homes (301) is as unknown as a missing one.
            if failure.reason == "not_found" or failure.response_code in (100, 301):
                return _error_page(404, "unknown", text, lang)
            if failure.reason == "invalid" or failure.response_code == 102:
                return _error_page(400, "bad", text, lang)
            status = 504 if failure.reason in ("timeout", "deadline") else 502
            return _error_page(status, "down", text, lang)
        templates = fetch_templates(current_app, result)
        html = render_template("trace_page.html", **page_model(result, lang, templates))
        resp = Response(html, mimetype="text/html")
        resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
        resp.headers["Vary"] = "Accept-Language"
        return resp

    return bp
