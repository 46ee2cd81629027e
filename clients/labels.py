"""QR labels that carry a product's consumer URL, and decoding them back from images."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import segno
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from idcore.identifier import from_scan

SVG_NS = "http://www.w3.org/2000/svg"
# Characters a handle suffix may keep unescaped in a URL path ('/' separates prefix and suffix).
_SAFE = "/:@-._~!$&'()*+,;="


def consumer_url(top: str, identifier: str) -> str:
    """`{top}/t/{handle}`: the consumer page on the top-level node."""
    handle = from_scan(identifier).text
    return f"{top.rstrip('/')}/t/{quote(handle, safe=_SAFE)}"


def write_label(url: str, caption: str, path: Path, scale: int = 8) -> Path:
    """Write a QR code of `url` with a human-readable caption; PNG or SVG by the suffix."""
    qr = segno.make(url, error="m", micro=False)
    kind = path.suffix.lower()
    if kind == ".png":
        path.write_bytes(_png(qr, caption, scale))
    elif kind == ".svg":
        path.write_bytes(_svg(qr, caption, url, scale))
    else:
        raise ValueError(f"label file {path.name!r} must end in .png or .svg")
    return path


def _png(qr: segno.QRCode, caption: str, scale: int) -> bytes:
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=scale, border=4)
    code = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    size = max(12, scale * 2)
    font = ImageFont.load_default(size=size)
    width = max(code.width, int(font.getlength(caption)) + 4 * scale)
    label = Image.new("L", (width, code.height + size + 2 * scale), 255)
    label.paste(code, ((width - code.width) // 2, 0))
    draw = ImageDraw.Draw(label)
    draw.text((width // 2, code.height + scale // 2), caption, fill=0, font=font, anchor="ma")
    out = io.BytesIO()
    label.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _svg(qr: segno.QRCode, caption: str, url: str, scale: int) -> bytes:
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=scale, border=4, title=caption, desc=url, xmldecl=False)
    ET.register_namespace("", SVG_NS)
    root = ET.fromstring(buf.getvalue())
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    extra = scale * 4
    root.set("height", f"{height + extra:g}")
    root.set("viewBox", f"0 0 {width:g} {height + extra:g}")
    text = ET.SubElement(root, f"{{{SVG_NS}}}text")
    text.set("x", f"{width / 2:g}")
    text.set("y", f"{height + extra / 2:g}")
    text.set("text-anchor", "middle")
    text.set("font-family", "monospace")
    text.set("font-size", f"{scale * 2:g}")
    text.text = caption

    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def read_codes(path: Path) -> list[str]:
    """Texts of every QR (or other barcode) zxing-cpp finds in an image file."""
    if path.suffix.lower() == ".svg":
        raise ValueError(f"{path.name}: SVG is a vector format; scan a PNG or JPEG photo of it")
    with Image.open(path) as image:
        image.load()
        found = zxingcpp.read_barcodes(image.convert("L"))
    return [r.text for r in found if r.text]
