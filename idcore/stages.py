"""Record conventions shared by the demo data, the tracer and the consumer page (DESIGN.md §5)."""

from __future__ import annotations

from typing import Literal

URL_INDEX = 1
ADMIN_INDEX = 100
SECKEY_INDEX = 300
SIGNATURE_INDEX = 400
TEMPLATE_INDEX = 1001
TEMPLATE_TYPE = "IDIS.TEMPLATE"
FIRST_ITEM_INDEX = 2000
TRACE_PREFIX = "TRACE."

Stage = Literal[
    "product",
    "raw_material",
    "component",
    "production",
    "process",
    "inspection",
    "enterprise",
    "other",
]

# Order a trace is told in: from the ground up to the finished, inspected product.
STAGE_ORDER: tuple[Stage, ...] = (
    "raw_material",
    "component",
    "production",
    "process",
    "product",
    "inspection",
    "enterprise",
    "other",
)

STAGE_TITLES: dict[Stage, tuple[str, str]] = {
    "raw_material": ("原材料", "Raw material"),
    "component": ("零部件", "Components"),
    "production": ("生产批次", "Production"),
    "process": ("工序", "Process steps"),
    "product": ("产品", "Product"),
    "inspection": ("质量检验", "Inspection"),
    "enterprise": ("企业", "Enterprises"),
    "other": ("其他", "Other"),
}

# Template family (the name before '@') → stage. Unknown templates fall back to the
# relation that led to the record, so a new industry's chain still traces.
TEMPLATE_STAGES: dict[str, Stage] = {
    "furniture.product": "product",
    "furniture.batch": "production",
    "board.lot": "raw_material",
    "timber.origin": "raw_material",
    "hardware.lot": "raw_material",
    "coating.lot": "raw_material",
    "process.step": "process",
    "inspection.report": "inspection",
    "enterprise.profile": "enterprise",
    "generator.unit": "product",
    "stator.lot": "component",
    "winding.lot": "component",
    "test.report": "inspection",
    "battery.cell_lot": "raw_material",
    "battery.pack": "component",
    "vehicle.unit": "product",
}

RELATION_STAGES: dict[str, Stage] = {
    "TRACE.ORIGIN": "raw_material",
    "TRACE.INPUT": "raw_material",
    "TRACE.COMPONENT": "component",
    "TRACE.BATCH": "production",
    "TRACE.STEP": "process",
    "TRACE.INSPECTION": "inspection",
    "TRACE.SUPPLIER": "enterprise",
    "TRACE.MANUFACTURER": "enterprise",
}


def template_family(template: str | None) -> str:
    """`furniture.product@1` → `furniture.product`."""
    return (template or "").split("@", 1)[0]


def stage_of(template: str | None, relation: str | None = None) -> Stage:
    """The stage a record belongs to, from its template, else from the edge that led to it."""
    family = template_family(template)
    if family in TEMPLATE_STAGES:
        return TEMPLATE_STAGES[family]
    if relation and relation in RELATION_STAGES:
        return RELATION_STAGES[relation]
    return "product" if relation is None else "other"
