"""Deterministic demo data: enterprises and identifiers on every secondary node (marked demo)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from idcore.topology import NodeSpec, Topology

# Names are invented for the emulator and labelled as demo data wherever shown.
_ENTERPRISES: dict[str, list[tuple[str, str]]] = {
    "furniture": [
        ("重庆华木家具有限公司（演示）", "Chongqing Huamu Furniture Co., Ltd. (demo)"),
        ("成都锦居家居有限公司（演示）", "Chengdu Jinju Home Furnishing Co., Ltd. (demo)"),
    ],
    "timber": [
        ("重庆林海板业有限公司（演示）", "Chongqing Linhai Panel Co., Ltd. (demo)"),
        ("四川青城林业有限公司（演示）", "Sichuan Qingcheng Forestry Co., Ltd. (demo)"),
    ],
    "materials": [
        ("重庆铁马五金有限公司（演示）", "Chongqing Tiema Hardware Co., Ltd. (demo)"),
        ("重庆彩源涂料有限公司（演示）", "Chongqing Caiyuan Coatings Co., Ltd. (demo)"),
    ],
    "inspection": [
        ("重庆家具质量检验中心（演示）", "Chongqing Furniture Quality Inspection Center (demo)"),
        ("西南检测认证有限公司（演示）", "Southwest Testing & Certification Co., Ltd. (demo)"),
    ],
    "power": [
        ("重庆东电发电设备有限公司（演示）", "Chongqing Dongdian Power Equipment Co., Ltd. (demo)"),
        ("重庆江能电机有限公司（演示）", "Chongqing Jiangneng Motor Co., Ltd. (demo)"),
    ],
    "auto": [
        ("重庆长江汽车有限公司（演示）", "Chongqing Changjiang Automobile Co., Ltd. (demo)"),
        ("宜宾锂源电池有限公司（演示）", "Yibin Liyuan Battery Co., Ltd. (demo)"),
    ],
}

# (suffix stem, item name zh, item name en) per node and enterprise position.
_ITEMS: dict[str, list[tuple[str, str, str]]] = {
    "furniture": [("WARD", "衣柜", "wardrobe"), ("BED", "实木床", "solid-wood bed")],
    "timber": [
        ("BOARD-LOT", "刨花板批次", "particleboard lot"),
        ("TIMBER-LOT", "原木批次", "log lot"),
    ],
    "materials": [
        ("HINGE-LOT", "铰链批次", "hinge lot"),
        ("COAT-LOT", "水性漆批次", "waterborne paint lot"),
    ],
    "inspection": [
        ("QC", "出厂检验报告", "factory QC report"),
        ("RPT", "甲醛释放量检测报告", "formaldehyde report"),
    ],
    "power": [("GEN", "水轮发电机", "hydro generator"), ("STATOR", "定子", "stator")],
    "auto": [("VEH", "电动汽车", "electric vehicle"), ("CELL-LOT", "电芯批次", "battery cell lot")],
}
_GENERIC_ITEM = ("ITEM", "产品", "product")


@dataclass(frozen=True)
class Enterprise:
    """A demo enterprise: its prefix on a secondary node and its write credentials."""

    prefix: str
    node: str
    name: str
    name_en: str

    @property
    def admin_handle(self) -> str:
        """Its admin handle."""
        return f"{self.prefix}/ADMIN"

    @property
    def admin(self) -> str:
        """Its identity as HTTP Basic user."""
        return f"300:{self.admin_handle}"

    @property
    def secret(self) -> str:
        """Its demo secret."""
        return f"demo-{self.prefix}-secret"


@dataclass
class DemoData:
    """Everything the demo seeds, per node, plus samples for users and tests."""

    enterprises: list[Enterprise] = field(default_factory=list)
    identifiers: dict[str, list[tuple[str, list[dict[str, Any]]]]] = field(default_factory=dict)
    product: str = ""

    def for_node(self, node: str) -> list[tuple[str, list[dict[str, Any]]]]:
        """(handle, values) pairs the node homes."""
        return self.identifiers.get(node, [])

    def enterprises_of(self, node: str) -> list[Enterprise]:
        """The enterprises registered on a node."""
        return [e for e in self.enterprises if e.node == node]

    @property
    def samples(self) -> list[str]:
        """Every demo identifier."""
        return [h for pairs in self.identifiers.values() for h, _ in pairs]


def _value(index: int, vtype: str, value: str, stamp: str) -> dict[str, Any]:
    return {
        "index": index,
        "type": vtype,
        "data": {"format": "string", "value": value},
        "ttl": 86400,
        "timestamp": stamp,
    }


def build_demo(topology: Topology, seed: int = 2024, top_url: str | None = None) -> DemoData:
    """The demo data set: the same seed gives the same data."""
    rng = random.Random(seed)
    top = top_url or (topology.top_level[0].url if topology.top_level else "http://127.0.0.1:8000")
    data = DemoData()
    for spec in topology.secondaries:
        data.identifiers[spec.name] = []
        for position, (name, name_en) in enumerate(_names(spec), start=1):
            ent = Enterprise(f"{spec.prefix}.{position}", spec.name, name, name_en)
            data.enterprises.append(ent)
            stem, zh, en = _item(spec, position)
            for n in range(3):
                serial = (
                    123 + n if (spec.name, position) == ("furniture", 1) else rng.randint(1, 9999)
                )
                handle = f"{ent.prefix}/{stem}-2024-{serial:06d}"
                month, day, hour = rng.randint(3, 9), rng.randint(10, 28), rng.randint(1, 9)
                stamp = f"2024-{month:02d}-{day:02d}T0{hour}:00:00Z"
                values = [
                    _value(1, "URL", f"{top}/t/{handle}", stamp),
                    _value(2000, "name", f"{zh}（演示） / {en} (demo)", stamp),
                    _value(2001, "model", f"{stem}-{rng.randint(100, 999)}", stamp),
                    _value(2002, "manufacturer", f"{name} / {name_en}", stamp),
                    _value(2003, "produced_at", stamp[:10], stamp),
                ]
                data.identifiers[spec.name].append((handle, values))
    data.product = _first_product(data)
    return data


def _names(spec: NodeSpec) -> list[tuple[str, str]]:
    known = _ENTERPRISES.get(spec.name)
    if known:
        return known
    return [
        (f"{spec.name} 示范企业{i}（演示）", f"{spec.name.title()} Demo Enterprise {i} (demo)")
        for i in (1, 2)
    ]


def _item(spec: NodeSpec, position: int) -> tuple[str, str, str]:
    items = _ITEMS.get(spec.name)
    return items[(position - 1) % len(items)] if items else _GENERIC_ITEM


def _first_product(data: DemoData) -> str:
    for node in ("furniture", *data.identifiers):
        pairs = data.identifiers.get(node)
        if pairs:
            return pairs[0][0]
    return ""
