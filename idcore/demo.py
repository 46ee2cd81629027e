"""Deterministic demo data: a furniture supply chain across four secondary nodes, and more.

Everything is invented for the emulator and marked 演示 / demo wherever a person sees it.
The same seed number always gives the same data (no clock, no global random state).

The story (DESIGN.md §1): a furniture maker on 88.168 builds wardrobes, beds and
bookcases in production batches. Each product links with ``TRACE.*`` values to

- board lots on 88.169 (each ``TRACE.ORIGIN`` → timber origin lots there: species,
  harvest region and date, FSC certificate),
- hardware (hinge, slide, connector) and coating lots (VOC content) on 88.170,
- its production batch on 88.168, which links the process steps (cutting, edge banding,
  drilling, painting, assembly) and the third-party inspection reports on 88.171,
- a factory (internal) QC report on 88.171, and its maker's enterprise profile.

Lots are shared between products (and between the two furniture makers), and times
always run harvest < board < production < inspection. Shorter chains on 88.172
(generator → stator, winding → test report) and 88.173 (battery cell lot from a Yibin
supplier → pack → vehicle) show other industries tracing the same way.

Every record: URL at index 1 (the consumer page), HS_ADMIN at 100 (its enterprise's
admin), IDIS.TEMPLATE at 1001, template items from 2000, TRACE.* edges from 3000.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idcore.stages import (
    ADMIN_INDEX,
    FIRST_ITEM_INDEX,
    TEMPLATE_INDEX,
    TEMPLATE_STAGES,
    TEMPLATE_TYPE,
    URL_INDEX,
)
from idcore.template import Template, TemplateItem
from idcore.topology import NodeSpec, Topology
from idcore.values import ALL_PERMISSIONS

DEMO_VERSION = "supply-chain-1"
"""Changes whenever the demo content changes, so an old data directory is seeded again."""

FIRST_EDGE_INDEX = 3000
PROFILE_SUFFIX = "PROFILE"
PROFILE_TEMPLATE = "enterprise.profile@1"

Values = list[dict[str, Any]]
Pairs = list[tuple[str, Values]]

# --- templates -------------------------------------------------------------------------------


def _i(
    code: str,
    zh: str,
    en: str,
    kind: str = "string",
    required: bool = False,
    **limits: Any,
) -> TemplateItem:
    return TemplateItem.model_validate(
        {"code": code, "name_zh": zh, "name_en": en, "type": kind, "required": required, **limits}
    )


def _t(name: str, zh: str, en: str, items: list[TemplateItem], description: str = "") -> Template:
    family = name.split("@", 1)[0]
    return Template(
        name=name,
        title_zh=zh,
        title_en=en,
        stage=TEMPLATE_STAGES.get(family, "other"),
        description=description,
        items=items,
    )


_R = True  # required

DEMO_TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        _t(
            "furniture.product@1",
            "家具产品",
            "Furniture product",
            [
                _i("name", "产品名称", "Product name", "string", _R, max_length=100),
                _i("category", "品类", "Category", "string", _R, max_length=50),
                _i("model", "型号", "Model", "string", _R, max_length=50),
                _i("serial_no", "产品序列号", "Serial number", "string", _R, max_length=50),
                _i("dimensions", "规格尺寸", "Dimensions", "string", max_length=50, unit="mm"),
                _i("main_material", "主要材料", "Main material", "string", max_length=100),
                _i("finish", "表面处理", "Surface finish", "string", max_length=100),
                _i("color", "颜色", "Colour", "string", max_length=30),
                _i("manufacturer", "制造商", "Manufacturer", "string", _R, max_length=100),
                _i("produced_at", "生产日期", "Production date", "date", _R),
                _i("standard", "执行标准", "Product standard", "string", max_length=100),
                _i(
                    "warranty_years", "质保期", "Warranty", "number", min=0, max=30, unit="年/years"
                ),
                _i("image", "产品图片", "Product image", "image"),
            ],
            "一件家具成品（单品级标识）/ one finished piece of furniture (unit-level identifier)",
        ),
        _t(
            "furniture.batch@1",
            "生产批次",
            "Production batch",
            [
                _i("batch_no", "批次号", "Batch number", "string", _R, max_length=50),
                _i("product_model", "产品型号", "Product model", "string", _R, max_length=50),
                _i("quantity", "数量", "Quantity", "number", _R, min=1, max=1_000_000, unit="件"),
                _i("line", "生产线", "Production line", "string", max_length=100),
                _i("plant", "工厂", "Plant", "string", max_length=100),
                _i("started_at", "开始时间", "Started", "datetime", _R),
                _i("finished_at", "完成时间", "Finished", "datetime", _R),
            ],
        ),
        _t(
            "process.step@1",
            "工序记录",
            "Process step",
            [
                _i("step", "工序", "Step", "string", _R, max_length=50),
                _i("step_code", "工序代码", "Step code", "string", _R, max_length=20),
                _i("sequence", "工序号", "Sequence", "number", _R, min=1, max=99),
                _i("batch_no", "批次号", "Batch number", "string", max_length=50),
                _i("station", "工位/设备", "Station", "string", _R, max_length=100),
                _i("operator", "操作员", "Operator", "string", _R, max_length=50),
                _i("started_at", "开始时间", "Started", "datetime", _R),
                _i("ended_at", "结束时间", "Ended", "datetime", _R),
                _i("parameters", "工艺参数", "Parameters", "string", max_length=255),
            ],
        ),
        _t(
            "board.lot@1",
            "人造板批次",
            "Board lot",
            [
                _i("product_name", "产品名称", "Product name", "string", _R, max_length=100),
                _i("board_type", "板材类型", "Board type", "string", _R, max_length=50),
                _i("thickness_mm", "厚度", "Thickness", "number", _R, min=1, max=100, unit="mm"),
                _i(
                    "formaldehyde_class",
                    "甲醛释放等级",
                    "Formaldehyde class",
                    "string",
                    _R,
                    max_length=20,
                ),
                _i("quantity_sheets", "数量", "Quantity", "number", min=1, unit="张/sheets"),
                _i("produced_at", "生产日期", "Production date", "date", _R),
                _i("standard", "执行标准", "Standard", "string", max_length=100),
                _i("manufacturer", "生产企业", "Manufacturer", "string", _R, max_length=100),
            ],
        ),
        _t(
            "timber.origin@1",
            "原木产地批次",
            "Timber origin lot",
            [
                _i("species", "树种", "Species", "string", _R, max_length=100),
                _i("harvest_region", "采伐地区", "Harvest region", "string", _R, max_length=100),
                _i("harvest_date", "采伐日期", "Harvest date", "date", _R),
                _i(
                    "fsc_certificate",
                    "FSC 证书编号",
                    "FSC certificate number",
                    "string",
                    _R,
                    max_length=50,
                ),
                _i("logging_permit", "采伐许可证号", "Logging permit", "string", max_length=50),
                _i("volume_m3", "材积", "Volume", "number", min=0, max=100_000, unit="m³"),
            ],
        ),
        _t(
            "hardware.lot@1",
            "五金件批次",
            "Hardware lot",
            [
                _i("name", "名称", "Name", "string", _R, max_length=100),
                _i("kind", "类别", "Kind", "string", _R, max_length=50),
                _i("model", "型号", "Model", "string", _R, max_length=50),
                _i("material", "材质", "Material", "string", max_length=100),
                _i("quantity", "数量", "Quantity", "number", min=1, unit="件/pcs"),
                _i("produced_at", "生产日期", "Production date", "date", _R),
                _i("standard", "执行标准", "Standard", "string", max_length=100),
            ],
        ),
        _t(
            "coating.lot@1",
            "涂料批次",
            "Coating lot",
            [
                _i("name", "名称", "Name", "string", _R, max_length=100),
                _i("coating_type", "涂料类型", "Coating type", "string", _R, max_length=50),
                _i(
                    "voc_g_per_l",
                    "VOC 含量",
                    "VOC content",
                    "number",
                    _R,
                    min=0,
                    max=1000,
                    unit="g/L",
                ),
                _i("quantity_kg", "数量", "Quantity", "number", min=0, unit="kg"),
                _i("produced_at", "生产日期", "Production date", "date", _R),
                _i("standard", "执行标准", "Standard", "string", max_length=100),
            ],
        ),
        _t(
            "inspection.report@1",
            "检验报告",
            "Inspection report",
            [
                _i("report_no", "报告编号", "Report number", "string", _R, max_length=50),
                _i("report_kind", "检验类别", "Kind of inspection", "string", _R, max_length=50),
                _i("lab", "检验机构", "Laboratory", "string", _R, max_length=100),
                _i("standard", "检验依据", "Standard", "string", _R, max_length=150),
                _i("sample", "样品", "Sample", "string", max_length=150),
                _i("measured", "检验项目及结果", "Measured items", "string", _R, max_length=255),
                _i("result", "检验结论", "Result", "string", _R, max_length=50),
                _i("certificate_no", "证书编号", "Certificate number", "string", max_length=50),
                _i("inspected_at", "检验日期", "Inspection date", "date", _R),
            ],
        ),
        _t(
            "enterprise.profile@1",
            "企业信息",
            "Enterprise profile",
            [
                _i("name", "企业名称", "Name", "string", _R, max_length=100),
                _i("name_en", "英文名称", "English name", "string", _R, max_length=150),
                _i("credit_code", "统一社会信用代码", "Credit code", "string", _R, max_length=18),
                _i("region", "所在地区", "Region", "string", _R, max_length=50),
                _i("address", "地址", "Address", "string", max_length=150),
                _i("industry", "行业", "Industry", "string", _R, max_length=100),
                _i("established", "成立日期", "Established", "date"),
                _i("website", "网站", "Website", "url"),
            ],
        ),
        _t(
            "generator.unit@1",
            "发电机组",
            "Generator unit",
            [
                _i("name", "产品名称", "Name", "string", _R, max_length=100),
                _i("model", "型号", "Model", "string", _R, max_length=50),
                _i("serial_no", "出厂编号", "Serial number", "string", _R, max_length=50),
                _i("rated_power_mw", "额定功率", "Rated power", "number", _R, min=0, unit="MW"),
                _i("rated_voltage_kv", "额定电压", "Rated voltage", "number", min=0, unit="kV"),
                _i("manufacturer", "制造商", "Manufacturer", "string", _R, max_length=100),
                _i("produced_at", "出厂日期", "Production date", "date", _R),
            ],
        ),
        _t(
            "stator.lot@1",
            "定子批次",
            "Stator lot",
            [
                _i("name", "名称", "Name", "string", _R, max_length=100),
                _i("model", "型号", "Model", "string", _R, max_length=50),
                _i("core_material", "铁芯材料", "Core material", "string", max_length=100),
                _i("quantity", "数量", "Quantity", "number", min=1),
                _i("produced_at", "生产日期", "Production date", "date", _R),
            ],
        ),
        _t(
            "winding.lot@1",
            "绕组批次",
            "Winding lot",
            [
                _i("name", "名称", "Name", "string", _R, max_length=100),
                _i("conductor", "导体", "Conductor", "string", _R, max_length=100),
                _i("insulation_class", "绝缘等级", "Insulation class", "string", max_length=10),
                _i("quantity", "数量", "Quantity", "number", min=1),
                _i("produced_at", "生产日期", "Production date", "date", _R),
            ],
        ),
        _t(
            "test.report@1",
            "试验报告",
            "Test report",
            [
                _i("report_no", "报告编号", "Report number", "string", _R, max_length=50),
                _i("lab", "试验机构", "Laboratory", "string", _R, max_length=100),
                _i("standard", "试验依据", "Standard", "string", _R, max_length=150),
                _i("measured", "试验项目及结果", "Measured items", "string", _R, max_length=255),
                _i("result", "试验结论", "Result", "string", _R, max_length=50),
                _i("certificate_no", "证书编号", "Certificate number", "string", max_length=50),
                _i("tested_at", "试验日期", "Test date", "date", _R),
            ],
        ),
        _t(
            "battery.cell_lot@1",
            "电芯批次",
            "Battery cell lot",
            [
                _i("name", "名称", "Name", "string", _R, max_length=100),
                _i("chemistry", "化学体系", "Chemistry", "string", _R, max_length=50),
                _i("capacity_ah", "额定容量", "Capacity", "number", _R, min=0, unit="Ah"),
                _i("nominal_voltage_v", "标称电压", "Nominal voltage", "number", min=0, unit="V"),
                _i("quantity", "数量", "Quantity", "number", min=1),
                _i("plant", "生产基地", "Plant", "string", max_length=100),
                _i("produced_at", "生产日期", "Production date", "date", _R),
                _i("standard", "执行标准", "Standard", "string", max_length=100),
            ],
        ),
        _t(
            "battery.pack@1",
            "电池包",
            "Battery pack",
            [
                _i("name", "名称", "Name", "string", _R, max_length=100),
                _i("model", "型号", "Model", "string", _R, max_length=50),
                _i("serial_no", "编号", "Serial number", "string", _R, max_length=50),
                _i("energy_kwh", "电量", "Energy", "number", _R, min=0, unit="kWh"),
                _i("cell_count", "电芯数量", "Cell count", "number", min=1),
                _i("produced_at", "生产日期", "Production date", "date", _R),
            ],
        ),
        _t(
            "vehicle.unit@1",
            "整车",
            "Vehicle",
            [
                _i("name", "车型名称", "Name", "string", _R, max_length=100),
                _i("model", "型号", "Model", "string", _R, max_length=50),
                _i("vin", "车辆识别代号", "VIN", "string", _R, max_length=17),
                _i("manufacturer", "制造商", "Manufacturer", "string", _R, max_length=100),
                _i("produced_at", "生产日期", "Production date", "date", _R),
            ],
        ),
    )
}

# --- enterprises ---------------------------------------------------------------------------

# (zh, en, region, industry) per node, in prefix order: 88.<node>.1, .2, ...
_ENTERPRISES: dict[str, list[tuple[str, str, str, str]]] = {
    "furniture": [
        (
            "重庆华木家具有限公司（演示）",
            "Chongqing Huamu Furniture Co., Ltd. (demo)",
            "重庆市南岸区",
            "家具制造 / furniture manufacturing",
        ),
        (
            "成都锦居家居有限公司（演示）",
            "Chengdu Jinju Home Furnishing Co., Ltd. (demo)",
            "四川省成都市",
            "家具制造 / furniture manufacturing",
        ),
    ],
    "timber": [
        (
            "重庆林海板业有限公司（演示）",
            "Chongqing Linhai Panel Co., Ltd. (demo)",
            "重庆市永川区",
            "人造板制造 / wood-based panels",
        ),
        (
            "四川青城林业有限公司（演示）",
            "Sichuan Qingcheng Forestry Co., Ltd. (demo)",
            "四川省雅安市",
            "林业 / forestry",
        ),
    ],
    "materials": [
        (
            "重庆铁马五金有限公司（演示）",
            "Chongqing Tiema Hardware Co., Ltd. (demo)",
            "重庆市九龙坡区",
            "家具五金 / furniture hardware",
        ),
        (
            "重庆彩源涂料有限公司（演示）",
            "Chongqing Caiyuan Coatings Co., Ltd. (demo)",
            "重庆市长寿区",
            "涂料制造 / coatings",
        ),
    ],
    "inspection": [
        (
            "重庆家具质量检验中心（演示）",
            "Chongqing Furniture Quality Inspection Center (demo)",
            "重庆市渝北区",
            "检验检测 / testing and inspection",
        ),
        (
            "西南检测认证有限公司（演示）",
            "Southwest Testing & Certification Co., Ltd. (demo)",
            "四川省成都市",
            "检验检测 / testing and inspection",
        ),
        (
            "成渝家具出厂检验服务中心（演示）",
            "Chengdu-Chongqing Furniture Factory QC Service Center (demo)",
            "重庆市南岸区",
            "检验检测 / factory quality control",
        ),
    ],
    "power": [
        (
            "重庆东电发电设备有限公司（演示）",
            "Chongqing Dongdian Power Equipment Co., Ltd. (demo)",
            "重庆市北碚区",
            "发电设备制造 / power-generation equipment",
        ),
        (
            "重庆江能电机有限公司（演示）",
            "Chongqing Jiangneng Motor Co., Ltd. (demo)",
            "重庆市江津区",
            "电机制造 / electric machines",
        ),
    ],
    "auto": [
        (
            "重庆长江汽车有限公司（演示）",
            "Chongqing Changjiang Automobile Co., Ltd. (demo)",
            "重庆市两江新区",
            "汽车制造 / automobiles",
        ),
        (
            "宜宾锂源电池有限公司（演示）",
            "Yibin Liyuan Battery Co., Ltd. (demo)",
            "四川省宜宾市",
            "动力电池 / traction batteries",
        ),
    ],
}


@dataclass(frozen=True)
class Enterprise:
    """A demo enterprise: its prefix on a secondary node and its write credentials."""

    prefix: str
    node: str
    name: str
    name_en: str
    region: str = ""
    industry: str = ""

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

    @property
    def profile(self) -> str:
        """The identifier of its enterprise profile record."""
        return f"{self.prefix}/{PROFILE_SUFFIX}"


@dataclass
class DemoData:
    """Everything the demo seeds, per node, plus samples for users and tests."""

    enterprises: list[Enterprise] = field(default_factory=list)
    identifiers: dict[str, Pairs] = field(default_factory=dict)
    product: str = ""

    def for_node(self, node: str) -> Pairs:
        """(handle, values) pairs the node homes."""
        return self.identifiers.get(node, [])

    def enterprises_of(self, node: str) -> list[Enterprise]:
        """The enterprises registered on a node."""
        return [e for e in self.enterprises if e.node == node]

    def templates_of(self, node: str) -> list[Template]:
        """The templates a node needs: those its records name, and the enterprise profile."""
        return templates_for(self.for_node(node))

    @property
    def samples(self) -> list[str]:
        """Every demo identifier."""
        return [h for pairs in self.identifiers.values() for h, _ in pairs]

    def records(self) -> dict[str, Values]:
        """Every demo record by handle."""
        return {h: v for pairs in self.identifiers.values() for h, v in pairs}


def templates_for(pairs: Iterable[tuple[str, Values]]) -> list[Template]:
    """The demo templates the records name at index 1001 (plus the enterprise profile)."""
    names = {PROFILE_TEMPLATE}
    for _, values in pairs:
        for value in values:
            if value["index"] == TEMPLATE_INDEX:
                names.add(str(value["data"]["value"]))
    return [DEMO_TEMPLATES[n] for n in sorted(names) if n in DEMO_TEMPLATES]


# --- building records ----------------------------------------------------------------------


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Book:
    """Collects records per node, each with the conventional indexes."""

    def __init__(self, topology: Topology, top_url: str) -> None:
        self.top = top_url.rstrip("/")
        self.prefixes = {s.name: s.prefix for s in topology.secondaries}
        self.by_node: dict[str, Pairs] = defaultdict(list)

    def ent(self, node: str, number: int) -> str:
        """The prefix of enterprise `number` on `node` (the node need not be in the topology)."""
        base = self.prefixes.get(node, f"0.DEMO-{node}")
        return f"{base}.{number}"

    def add(
        self,
        node: str,
        handle: str,
        template: str,
        when: datetime,
        items: dict[str, str],
        edges: Iterable[tuple[str, str]] = (),
    ) -> str:
        """Record `handle` on `node` (skipped, but still returned, if the node is absent)."""
        if node not in self.prefixes:
            return handle
        stamp = _stamp(when)
        owner = handle.split("/", 1)[0]
        values: Values = [
            _value(URL_INDEX, "URL", f"{self.top}/t/{handle}", stamp),
            {
                "index": ADMIN_INDEX,
                "type": "HS_ADMIN",
                "data": {
                    "format": "admin",
                    "value": {
                        "handle": f"{owner}/ADMIN",
                        "index": 300,
                        "permissions": ALL_PERMISSIONS,
                    },
                },
                "ttl": 86400,
                "timestamp": stamp,
            },
            _value(TEMPLATE_INDEX, TEMPLATE_TYPE, template, stamp),
        ]
        spec = DEMO_TEMPLATES[template]
        index = FIRST_ITEM_INDEX
        for item in spec.items:  # template order, so every record of a kind reads alike
            if item.code in items:
                values.append(_value(index, item.code, items[item.code], stamp))
                index += 1
        for offset, (relation, target) in enumerate(edges):
            values.append(_value(FIRST_EDGE_INDEX + offset, relation, target, stamp))
        self.by_node[node].append((handle, values))
        return handle


def _value(index: int, vtype: str, text: str, stamp: str) -> dict[str, Any]:
    return {
        "index": index,
        "type": vtype,
        "data": {"format": "string", "value": text},
        "ttl": 86400,
        "timestamp": stamp,
    }


def _enterprises(topology: Topology) -> list[Enterprise]:
    out = []
    for spec in topology.secondaries:
        for position, (name, name_en, region, industry) in enumerate(_names(spec), start=1):
            out.append(
                Enterprise(f"{spec.prefix}.{position}", spec.name, name, name_en, region, industry)
            )
    return out


def _names(spec: NodeSpec) -> list[tuple[str, str, str, str]]:
    known = _ENTERPRISES.get(spec.name)
    if known:
        return known
    return [
        (
            f"{spec.name} 示范企业{i}（演示）",
            f"{spec.name.title()} Demo Enterprise {i} (demo)",
            "重庆市",
            spec.title or spec.name,
        )
        for i in (1, 2)
    ]


def _credit_code(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return (
        "91500"
        + "".join(rng.choice("0123456789") for _ in range(3))
        + "".join(rng.choice(alphabet) for _ in range(10))
    )


def _profiles(book: _Book, enterprises: list[Enterprise], rng: random.Random) -> None:
    for ent in enterprises:
        founded = datetime(rng.randint(1996, 2016), rng.randint(1, 12), rng.randint(1, 28), 9)
        book.add(
            ent.node,
            ent.profile,
            PROFILE_TEMPLATE,
            founded,
            {
                "name": ent.name,
                "name_en": ent.name_en,
                "credit_code": _credit_code(rng),
                "region": ent.region,
                "address": f"{ent.region}示范路 {rng.randint(1, 399)} 号（演示）",
                "industry": ent.industry,
                "established": _day(founded),
            },
        )


# --- the furniture chain -------------------------------------------------------------------

_SPECIES = [
    ("杉木 Chinese fir (Cunninghamia lanceolata)", "四川省雅安市宝兴县（演示）"),
    ("桉木 eucalyptus (Eucalyptus urophylla)", "广西壮族自治区崇左市（演示）"),
    ("杨木 poplar (Populus × euramericana)", "山东省菏泽市（演示）"),
    ("马尾松 Masson pine (Pinus massoniana)", "重庆市酉阳县（演示）"),
]

_BOARDS = {
    "PB18": ("E0级刨花板 18 mm / E0 particleboard 18 mm", "刨花板 particleboard", "18", "E0"),
    "MDF9": ("E0级中密度纤维板 9 mm / E0 MDF 9 mm", "中密度纤维板 MDF", "9", "E0"),
    "PLY18": ("ENF级实木多层板 18 mm / ENF plywood 18 mm", "胶合板 plywood", "18", "ENF"),
    "PB25": ("E0级刨花板 25 mm / E0 particleboard 25 mm", "刨花板 particleboard", "25", "E0"),
}
_BOARD_STANDARD = {
    "刨花板 particleboard": "GB/T 4897-2015 刨花板",
    "中密度纤维板 MDF": "GB/T 11718-2021 中密度纤维板",
    "胶合板 plywood": "GB/T 9846-2015 普通胶合板",
}

_HARDWARE = {
    "hinge": (
        "缓冲阻尼铰链 / soft-close hinge",
        "铰链 hinge",
        "HJ-35A",
        "冷轧钢镀镍 / nickel-plated steel",
        "QB/T 2189-2013 家具五金 杯状暗铰链",
    ),
    "slide": (
        "三节静音滑轨 / 3-section silent slide",
        "滑轨 slide",
        "HG-45-450",
        "冷轧钢 / cold-rolled steel",
        "QB/T 2454-2013 家具五金 抽屉导轨",
    ),
    "connector": (
        "床架连接件 / bed-frame connector",
        "连接件 connector",
        "LJ-M8",
        "镀锌钢 / galvanised steel",
        "QB/T 4451-2013 家具功能五金 连接件",
    ),
}

_COATINGS = {
    "top": ("水性木器清面漆 / waterborne clear topcoat", "水性聚氨酯 waterborne PU"),
    "primer": ("水性木器底漆 / waterborne primer", "水性丙烯酸 waterborne acrylic"),
}

_STEPS = [
    # code, zh, en, station, parameters
    ("CUT", "开料", "cutting", "CUT-01 电子开料锯 / panel saw", "锯片转速 4800 rpm；进给 22 m/min"),
    (
        "EDGE",
        "封边",
        "edge banding",
        "EB-02 全自动封边机 / edge bander",
        "热熔胶 195 ℃；封边速度 18 m/min；PVC 封边带 1.0 mm",
    ),
    ("DRILL", "钻孔", "drilling", "DR-01 六排钻 / boring machine", "孔径 5/8/35 mm；孔深 12.5 mm"),
    (
        "PAINT",
        "喷涂",
        "painting",
        "PT-01 水性漆喷涂线 / waterborne spray line",
        "喷涂量 120 g/m²；烘干 45 ℃ × 40 min",
    ),
    (
        "ASSY",
        "组装",
        "assembly",
        "AS-03 总装工位 / assembly station",
        "五金安装扭矩 2.5 N·m；预装 100%",
    ),
]
# (day, hour, minute) of each step's start (UTC) and its nominal length in minutes (±20):
# painting includes drying overnight; assembly starts the morning after.
_STEP_TIMES = [(0, 0, 30, 210), (0, 5, 0, 240), (1, 0, 30, 150), (1, 5, 0, 960), (3, 0, 30, 270)]

_PRODUCTS = {
    "WARD": (
        "三门推拉衣柜（演示） / 3-door sliding wardrobe (demo)",
        "衣柜 wardrobe",
        "HM-YG-1860",
        "1800×600×2200",
        "E0级刨花板、中密度纤维板 / E0 particleboard, MDF",
    ),
    "BED": (
        "北欧实木框架双人床（演示） / Nordic double bed (demo)",
        "床 bed",
        "HM-C-1820",
        "1800×2000×1000",
        "实木多层板、刨花板 / plywood, particleboard",
    ),
    "BOOK": (
        "五层开放书柜（演示） / 5-shelf open bookcase (demo)",
        "书柜 bookcase",
        "JJ-SG-0920",
        "900×300×2000",
        "E0级刨花板 / E0 particleboard",
    ),
}
_COLORS = ["胡桃木色 / walnut", "原木色 / natural oak", "象牙白 / ivory white", "烟灰 / smoke grey"]


@dataclass
class _Lots:
    """The lots one production batch draws on."""

    boards: list[str]
    hardware: list[str]
    coatings: list[str]


class _Furniture:
    """Builds the furniture chain records into a book."""

    def __init__(self, book: _Book, rng: random.Random, names: dict[str, str]) -> None:
        self.book = book
        self.rng = rng
        self.names = names
        self.maker = {1: book.ent("furniture", 1), 2: book.ent("furniture", 2)}
        self.boards = book.ent("timber", 1)
        self.forestry = book.ent("timber", 2)
        self.hardware = book.ent("materials", 1)
        self.coatings = book.ent("materials", 2)
        self.center = book.ent("inspection", 1)
        self.testing = book.ent("inspection", 2)
        self.factory_qc = book.ent("inspection", 3)

    def name(self, prefix: str) -> str:
        """`中文名 / English name` of the enterprise with this prefix."""
        return self.names.get(prefix, prefix)

    def timber_lot(self, tag: str, harvested: datetime, species: int) -> str:
        rng = self.rng
        kind, region = _SPECIES[species % len(_SPECIES)]
        return self.book.add(
            "timber",
            f"{self.forestry}/TIMBER-LOT-{tag}",
            "timber.origin@1",
            harvested,
            {
                "species": kind,
                "harvest_region": region,
                "harvest_date": _day(harvested),
                "fsc_certificate": f"FSC-C{rng.randint(100000, 199999)}（演示 demo）",
                "logging_permit": (
                    f"川林采许字〔{harvested.year}〕{rng.randint(100, 999)}号（演示）"
                ),
                "volume_m3": f"{rng.randint(80, 600)}.{rng.randint(0, 9)}",
            },
            [("TRACE.SUPPLIER", f"{self.forestry}/{PROFILE_SUFFIX}")],
        )

    def report(
        self,
        lab_prefix: str,
        suffix: str,
        when: datetime,
        kind: str,
        standard: str,
        sample: str,
        measured: str,
        certificate: bool = True,
    ) -> str:
        rng = self.rng
        items = {
            "report_no": suffix,
            "report_kind": kind,
            "lab": self.name(lab_prefix),
            "standard": standard,
            "sample": sample,
            "measured": measured,
            "result": "合格 / pass",
            "inspected_at": _day(when),
        }
        if certificate:
            items["certificate_no"] = f"CMA-{rng.randint(100000, 999999)}-{when.year}（演示）"
        return self.book.add(
            "inspection",
            f"{lab_prefix}/{suffix}",
            "inspection.report@1",
            when,
            items,
            [("TRACE.SUPPLIER", f"{lab_prefix}/{PROFILE_SUFFIX}")],
        )

    def board_lot(self, tag: str, kind: str, produced: datetime, origins: list[str]) -> str:
        rng = self.rng
        name, board_type, thickness, grade = _BOARDS[kind]
        tested = produced + timedelta(days=rng.randint(2, 5))
        formaldehyde = f"0.0{rng.randint(18, 45)}" if grade == "E0" else f"0.0{rng.randint(8, 24)}"
        limit = "E0 ≤0.050" if grade == "E0" else "ENF ≤0.025"
        report = self.report(
            self.testing,
            f"RPT-BOARD-{tag}",
            tested,
            "第三方检验 / third-party test",
            "GB/T 39600-2021 人造板及其制品甲醛释放量分级",
            f"{name}，批次 BOARD-LOT-{tag}",
            f"甲醛释放量 {formaldehyde} mg/m³（{limit} mg/m³，气候箱法）",
        )
        return self.book.add(
            "timber",
            f"{self.boards}/BOARD-LOT-{tag}",
            "board.lot@1",
            produced,
            {
                "product_name": name,
                "board_type": board_type,
                "thickness_mm": thickness,
                "formaldehyde_class": grade,
                "quantity_sheets": str(rng.randint(300, 2400)),
                "produced_at": _day(produced),
                "standard": _BOARD_STANDARD[board_type],
                "manufacturer": self.name(self.boards),
            },
            [
                *(("TRACE.ORIGIN", o) for o in origins),
                ("TRACE.INSPECTION", report),
                ("TRACE.MANUFACTURER", f"{self.boards}/{PROFILE_SUFFIX}"),
            ],
        )

    def hardware_lot(self, tag: str, kind: str, produced: datetime) -> str:
        name, category, model, material, standard = _HARDWARE[kind]
        stem = {"hinge": "HINGE", "slide": "SLIDE", "connector": "CONN"}[kind]
        return self.book.add(
            "materials",
            f"{self.hardware}/{stem}-LOT-{tag}",
            "hardware.lot@1",
            produced,
            {
                "name": name,
                "kind": category,
                "model": model,
                "material": material,
                "quantity": str(self.rng.randint(2000, 20000)),
                "produced_at": _day(produced),
                "standard": standard,
            },
            [("TRACE.MANUFACTURER", f"{self.hardware}/{PROFILE_SUFFIX}")],
        )

    def coating_lot(self, tag: str, kind: str, produced: datetime) -> str:
        rng = self.rng
        name, coating_type = _COATINGS[kind]
        voc = rng.randint(28, 80)
        report = self.report(
            self.testing,
            f"RPT-COAT-{tag}",
            produced + timedelta(days=rng.randint(2, 4)),
            "第三方检验 / third-party test",
            "GB 18581-2020 木器涂料中有害物质限量",
            f"{name}，批次 COAT-LOT-{tag}",
            f"VOC 含量 {voc} g/L；苯系物总和 未检出；可溶性重金属 未检出",
        )
        return self.book.add(
            "materials",
            f"{self.coatings}/COAT-LOT-{tag}",
            "coating.lot@1",
            produced,
            {
                "name": name,
                "coating_type": coating_type,
                "voc_g_per_l": str(voc),
                "quantity_kg": str(rng.randint(200, 2000)),
                "produced_at": _day(produced),
                "standard": "GB 18581-2020",
            },
            [
                ("TRACE.INSPECTION", report),
                ("TRACE.MANUFACTURER", f"{self.coatings}/{PROFILE_SUFFIX}"),
            ],
        )

    def batch(
        self,
        maker: int,
        batch_no: str,
        kind: str,
        started: datetime,
        lots: _Lots,
        serials: list[str],
    ) -> list[str]:
        """A production batch: its steps, reports, and one product per serial."""
        rng = self.rng
        prefix = self.maker[maker]
        name, category, model, size, material = _PRODUCTS[kind]
        staff = "HM" if maker == 1 else "JJ"
        steps = []
        ended = started
        for sequence, ((code, zh, en, station, params), (day, hour, minute, length)) in enumerate(
            zip(_STEPS, _STEP_TIMES, strict=True), start=1
        ):
            begin = started.replace(hour=hour, minute=minute) + timedelta(days=day)
            ended = begin + timedelta(minutes=length + rng.randint(-20, 20))
            if code == "PAINT" and lots.coatings:
                params += "；涂料批次 " + ", ".join(c.rsplit("/", 1)[1] for c in lots.coatings)
            steps.append(
                self.book.add(
                    "furniture",
                    f"{prefix}/STEP-{batch_no}-{sequence:02d}-{code}",
                    "process.step@1",
                    ended,
                    {
                        "step": f"{zh} / {en}",
                        "step_code": code,
                        "sequence": str(sequence),
                        "batch_no": batch_no,
                        "station": station,
                        "operator": f"工号 {staff}{rng.randint(1000, 9999)}（演示）",
                        "started_at": _stamp(begin),
                        "ended_at": _stamp(ended),
                        "parameters": params,
                    },
                )
            )
        finished = ended
        line = rng.randint(1, 4)
        sampled = finished + timedelta(days=rng.randint(3, 6))
        sample = f"{name}，型号 {model}，批次 {batch_no}"
        emission = f"0.{rng.randint(1, 6)}"
        reports = [
            self.report(
                self.center,
                f"RPT-{batch_no}-F",
                sampled,
                "第三方检验 / third-party inspection",
                "GB 18584-2001 室内装饰装修材料 木家具中甲醛释放限量",
                sample,
                f"甲醛释放量 {emission} mg/L（限量 ≤1.5 mg/L，干燥器法）",
            ),
            self.report(
                self.center,
                f"RPT-{batch_no}-Q",
                sampled + timedelta(days=1),
                "第三方检验 / third-party inspection",
                "GB/T 3324-2017 木家具通用技术条件",
                sample,
                "外观、理化性能（漆膜附着力 2 级、耐湿热、耐干热）、"
                "力学性能（强度、耐久性、稳定性）均符合要求",
            ),
        ]
        batch = self.book.add(
            "furniture",
            f"{prefix}/BATCH-{batch_no}",
            "furniture.batch@1",
            finished,
            {
                "batch_no": batch_no,
                "product_model": model,
                "quantity": str(len(serials)),
                "line": f"{line}号柔性生产线 / flexible line {line}",
                "plant": "重庆市南岸区茶园工业园（演示）"
                if maker == 1
                else "四川省成都市崇州家具产业园（演示）",
                "started_at": _stamp(started.replace(hour=0, minute=30)),
                "finished_at": _stamp(finished),
            },
            [*(("TRACE.STEP", s) for s in steps), *(("TRACE.INSPECTION", r) for r in reports)],
        )
        products = []
        maker_name = self.name(prefix)
        for serial in serials:
            suffix = f"{kind}-{serial}"
            checked = finished + timedelta(days=1, hours=rng.randint(0, 6))
            qc = self.report(
                self.factory_qc,
                f"QC-{prefix.rsplit('.', 1)[1]}-{suffix}",
                checked,
                "出厂检验 / factory QC (internal)",
                "GB/T 3324-2017 木家具通用技术条件（出厂检验项目）",
                f"{name}，序列号 {suffix}",
                "外观质量、尺寸偏差、形状与位置公差、五金件安装、门抽启闭 均合格",
                certificate=False,
            )
            products.append(
                self.book.add(
                    "furniture",
                    f"{prefix}/{suffix}",
                    "furniture.product@1",
                    finished,
                    {
                        "name": name,
                        "category": category,
                        "model": model,
                        "serial_no": suffix,
                        "dimensions": size,
                        "main_material": material,
                        "finish": "水性漆涂装 / waterborne lacquer",
                        "color": rng.choice(_COLORS),
                        "manufacturer": maker_name,
                        "produced_at": _day(finished),
                        "standard": "GB/T 3324-2017",
                        "warranty_years": str(rng.choice((3, 5, 10))),
                    },
                    [
                        ("TRACE.BATCH", batch),
                        *(("TRACE.INPUT", b) for b in lots.boards),
                        *(("TRACE.INPUT", h) for h in lots.hardware),
                        *(("TRACE.INPUT", c) for c in lots.coatings),
                        ("TRACE.INSPECTION", qc),
                        ("TRACE.MANUFACTURER", f"{prefix}/{PROFILE_SUFFIX}"),
                    ],
                )
            )
        return products


def _furniture_chain(f: _Furniture, rng: random.Random) -> str:
    """The fixed demo chain; returns the sample wardrobe."""
    year = 2024

    def when(month: int, lo: int, hi: int, hour: int = 1) -> datetime:
        return datetime(year, month, rng.randint(lo, hi), hour)

    harvests = [datetime(2023, 10 + i, rng.randint(3, 26), 2) for i in range(3)]
    timber = [f.timber_lot(f"2023-{h.month:02d}{h.day:02d}", h, i) for i, h in enumerate(harvests)]
    boards = {
        "PB18": f.board_lot("2024-0305", "PB18", when(3, 4, 8), [timber[0], timber[2]]),
        "MDF9": f.board_lot("2024-0312", "MDF9", when(3, 11, 15), [timber[2]]),
        "PLY18": f.board_lot("2024-0318", "PLY18", when(3, 17, 20), [timber[1]]),
        "PB25": f.board_lot("2024-0322", "PB25", when(3, 21, 25), [timber[0]]),
    }
    hinge_a = f.hardware_lot("2024-0322", "hinge", when(3, 20, 24))
    hinge_b = f.hardware_lot("2024-0409", "hinge", when(4, 8, 10))
    slide = f.hardware_lot("2024-0330", "slide", when(3, 27, 30))
    connector = f.hardware_lot("2024-0402", "connector", when(4, 1, 3))
    top = f.coating_lot("2024-0405", "top", when(4, 4, 6))
    primer = f.coating_lot("2024-0411", "primer", when(4, 10, 12))

    wardrobes = f.batch(
        1,
        "2024-0512",
        "WARD",
        datetime(year, 5, 12),
        _Lots([boards["PB18"], boards["MDF9"]], [hinge_a, slide], [primer, top]),
        [f"2024-{n:06d}" for n in range(123, 128)],
    )
    f.batch(
        1,
        "2024-0520",
        "BED",
        datetime(year, 5, 20),
        _Lots([boards["PLY18"], boards["PB25"]], [connector], [top]),
        [f"2024-{n:06d}" for n in range(201, 204)],
    )
    f.batch(
        2,
        "2024-0516",
        "BOOK",
        datetime(year, 5, 16),
        # The same particleboard and MDF lots as Huamu's wardrobes: lots are shared.
        _Lots([boards["PB18"], boards["MDF9"]], [hinge_b], [primer]),
        [f"2024-{n:06d}" for n in range(51, 54)],
    )
    return wardrobes[0]


# --- power and automotive chains -----------------------------------------------------------


def _power_chain(book: _Book, rng: random.Random, names: dict[str, str]) -> None:
    maker, supplier = book.ent("power", 1), book.ent("power", 2)
    winding_made = datetime(2024, 2, rng.randint(3, 9), 2)
    test = book.add(
        "power",
        f"{maker}/TEST-WINDING-2024-0215",
        "test.report@1",
        winding_made + timedelta(days=8),
        {
            "report_no": "TEST-WINDING-2024-0215",
            "lab": names.get(maker, maker),
            "standard": "GB/T 1029-2021 三相同步电机试验方法",
            "measured": f"绕组绝缘电阻 {rng.randint(1800, 4000)} MΩ；极化指数 "
            f"{rng.randint(25, 40) / 10:.1f}；匝间耐压 通过",
            "result": "合格 / pass",
            "certificate_no": f"CMA-{rng.randint(100000, 999999)}-2024（演示）",
            "tested_at": _day(winding_made + timedelta(days=8)),
        },
        [("TRACE.SUPPLIER", f"{maker}/{PROFILE_SUFFIX}")],
    )
    winding = book.add(
        "power",
        f"{supplier}/WINDING-LOT-2024-0205",
        "winding.lot@1",
        winding_made,
        {
            "name": "定子线棒 / stator winding bars",
            "conductor": "无氧铜扁线 / oxygen-free copper strip",
            "insulation_class": "F",
            "quantity": str(rng.randint(200, 600)),
            "produced_at": _day(winding_made),
        },
        [
            ("TRACE.INSPECTION", test),
            ("TRACE.MANUFACTURER", f"{supplier}/{PROFILE_SUFFIX}"),
        ],
    )
    for n in (31, 32):
        stator_made = datetime(2024, 3, rng.randint(1, 20), 3)
        stator = book.add(
            "power",
            f"{supplier}/STATOR-LOT-2024-{n:04d}",
            "stator.lot@1",
            stator_made,
            {
                "name": "水轮发电机定子 / hydro-generator stator",
                "model": "DZ-4200",
                "core_material": "50W470 冷轧硅钢片 / cold-rolled silicon steel",
                "quantity": "1",
                "produced_at": _day(stator_made),
            },
            [
                ("TRACE.INPUT", winding),
                ("TRACE.MANUFACTURER", f"{supplier}/{PROFILE_SUFFIX}"),
            ],
        )
        built = stator_made + timedelta(days=rng.randint(20, 40))
        factory_test = book.add(
            "power",
            f"{maker}/TEST-GEN-2024-{n:06d}",
            "test.report@1",
            built + timedelta(days=3),
            {
                "report_no": f"TEST-GEN-2024-{n:06d}",
                "lab": names.get(maker, maker),
                "standard": "GB/T 7894-2009 水轮发电机基本技术条件",
                "measured": "空载特性、短路特性、温升、效率、交流耐压 2Un+3 kV 1 min 均通过",
                "result": "合格 / pass",
                "certificate_no": f"CMA-{rng.randint(100000, 999999)}-2024（演示）",
                "tested_at": _day(built + timedelta(days=3)),
            },
            [("TRACE.SUPPLIER", f"{maker}/{PROFILE_SUFFIX}")],
        )
        book.add(
            "power",
            f"{maker}/GEN-2024-{n:06d}",
            "generator.unit@1",
            built,
            {
                "name": "混流式水轮发电机组（演示） / Francis hydro-generator unit (demo)",
                "model": "SF42-28/6400",
                "serial_no": f"GEN-2024-{n:06d}",
                "rated_power_mw": "42",
                "rated_voltage_kv": "10.5",
                "manufacturer": names.get(maker, maker),
                "produced_at": _day(built),
            },
            [
                ("TRACE.COMPONENT", stator),
                ("TRACE.COMPONENT", winding),
                ("TRACE.INSPECTION", factory_test),
                ("TRACE.MANUFACTURER", f"{maker}/{PROFILE_SUFFIX}"),
            ],
        )


def _vin(rng: random.Random, serial: int) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    return "LCJ" + "".join(rng.choice(letters) for _ in range(8)) + f"{serial:06d}"


def _auto_chain(book: _Book, rng: random.Random, names: dict[str, str]) -> None:
    maker, cells = book.ent("auto", 1), book.ent("auto", 2)
    lots = []
    for tag, month in (("2024-0307", 3), ("2024-0321", 3)):
        made = datetime(2024, month, int(tag[-2:]), 4)
        lots.append(
            book.add(
                "auto",
                f"{cells}/CELL-LOT-{tag}",
                "battery.cell_lot@1",
                made,
                {
                    "name": "磷酸铁锂方形电芯 / LFP prismatic cell",
                    "chemistry": "磷酸铁锂 LFP",
                    "capacity_ah": "280",
                    "nominal_voltage_v": "3.2",
                    "quantity": str(rng.randint(20000, 60000)),
                    "plant": "四川省宜宾市三江新区（演示）",
                    "produced_at": _day(made),
                    "standard": "GB 38031-2020 电动汽车用动力蓄电池安全要求",
                },
                [("TRACE.MANUFACTURER", f"{cells}/{PROFILE_SUFFIX}")],
            )
        )
    for n in (101, 102, 103):
        packed = datetime(2024, 4, rng.randint(8, 20), 2)
        pack = book.add(
            "auto",
            f"{maker}/PACK-2024-{n:06d}",
            "battery.pack@1",
            packed,
            {
                "name": "动力电池包 / traction battery pack",
                "model": "CJ-P72",
                "serial_no": f"PACK-2024-{n:06d}",
                "energy_kwh": "71.7",
                "cell_count": "80",
                "produced_at": _day(packed),
            },
            [("TRACE.INPUT", lots[n % 2]), ("TRACE.MANUFACTURER", f"{maker}/{PROFILE_SUFFIX}")],
        )
        built = packed + timedelta(days=rng.randint(5, 15))
        book.add(
            "auto",
            f"{maker}/VEH-2024-{n:06d}",
            "vehicle.unit@1",
            built,
            {
                "name": "长江 E7 纯电动轿车（演示） / Changjiang E7 electric sedan (demo)",
                "model": "CJ7000BEV",
                "vin": _vin(rng, n),
                "manufacturer": names.get(maker, maker),
                "produced_at": _day(built),
            },
            [("TRACE.COMPONENT", pack), ("TRACE.MANUFACTURER", f"{maker}/{PROFILE_SUFFIX}")],
        )


# --- public entry points -------------------------------------------------------------------


def _top_url(topology: Topology, top_url: str | None) -> str:
    return top_url or (topology.top_level[0].url if topology.top_level else "http://127.0.0.1:8000")


def _names_by_prefix(enterprises: list[Enterprise]) -> dict[str, str]:
    return {e.prefix: f"{e.name} / {e.name_en}" for e in enterprises}


def build_demo(topology: Topology, seed: int = 2024, top_url: str | None = None) -> DemoData:
    """The demo data set: the same seed gives the same data."""
    rng = random.Random(seed)
    book = _Book(topology, _top_url(topology, top_url))
    enterprises = _enterprises(topology)
    names = _names_by_prefix(enterprises)
    _profiles(book, enterprises, rng)
    product = _furniture_chain(_Furniture(book, rng, names), rng)
    _power_chain(book, rng, names)
    _auto_chain(book, rng, names)
    data = DemoData(enterprises=enterprises)
    for spec in topology.secondaries:
        data.identifiers[spec.name] = book.by_node.get(spec.name, [])
    if "furniture" not in book.prefixes:
        product = next(iter(data.samples), "")
    data.product = product
    return data


EXTRA_BATCH_SIZE = 20


def extra_products(
    topology: Topology, seed: int, start: int, n: int, top_url: str | None = None
) -> dict[str, Pairs]:
    """`n` more wardrobes numbered from `start`, with their lots, steps and reports, per node.

    Products come in batches of 20; each batch has its own timber, board, hardware and
    coating lots (with their test reports), five process steps and two third-party
    reports, and each product its factory QC report. Each batch is drawn from its own
    random stream (seed and first serial), so the same arguments give the same records
    and a run split at multiples of 20 (as `idr seed` streams them) gives the same
    records as one call. Handles carry `X<serial>`, so runs over other serials never
    collide.
    """
    book = _Book(topology, _top_url(topology, top_url))
    names = _names_by_prefix(_enterprises(topology))
    base = datetime(2025, 1, 6)
    for first in range(start, start + n, EXTRA_BATCH_SIZE):
        count = min(EXTRA_BATCH_SIZE, start + n - first)
        rng = random.Random(f"extra:{seed}:{first}")
        f = _Furniture(book, rng, names)
        tag = f"X{first:08d}"
        day = base + timedelta(days=(first // EXTRA_BATCH_SIZE) % 300)
        harvested = day - timedelta(days=rng.randint(120, 200))
        timber = f.timber_lot(tag, harvested.replace(hour=2), rng.randrange(len(_SPECIES)))
        boards = [
            f.board_lot(f"{tag}-A", "PB18", day - timedelta(days=rng.randint(40, 60)), [timber]),
            f.board_lot(f"{tag}-B", "MDF9", day - timedelta(days=rng.randint(40, 60)), [timber]),
        ]
        hardware = [
            f.hardware_lot(tag, "hinge", day - timedelta(days=rng.randint(20, 40))),
            f.hardware_lot(tag, "slide", day - timedelta(days=rng.randint(20, 40))),
        ]
        coatings = [f.coating_lot(tag, "top", day - timedelta(days=rng.randint(20, 30)))]
        serials = [f"X{first + k:08d}" for k in range(count)]
        f.batch(1, tag, "WARD", day, _Lots(boards, hardware, coatings), serials)
    return dict(book.by_node)
