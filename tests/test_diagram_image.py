"""The README's architecture diagram renders to a picture with every node on it.

mermaid-cli (pinned in package.json and package-lock.json, installed by `npm ci`; `make test`
and .ci/run do it) drives Debian's `chromium` through puppeteer.json, so a syntax error, a
layout the renderer rejects or an empty picture fails here rather than on GitHub.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest
from conftest import ROOT, unavailable
from golden import README, readme_block

MMDC = os.path.join(ROOT, "node_modules", ".bin", "mmdc")
PUPPETEER = os.path.join(ROOT, "puppeteer.json")


@pytest.fixture(scope="module")
def mmdc() -> str:
    if not os.path.exists(MMDC):
        unavailable("mermaid-cli is not installed: run `PUPPETEER_SKIP_DOWNLOAD=1 npm ci` (make test does)")
    if shutil.which("chromium") is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    return MMDC


def draw(mmdc: str, source: str, out: str) -> subprocess.CompletedProcess:
    src = out + ".mmd"
    with open(src, "w", encoding="utf-8") as fh:
        fh.write(source)
    return subprocess.run(
        [mmdc, "--quiet", "-p", PUPPETEER, "-b", "white", "-i", src, "-o", out],
        capture_output=True,
        text=True,
        timeout=120,
    )


def png_pixels(path: str) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered scanlines of an 8-bit RGB(A) PNG (what chromium writes)."""
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), f"unexpected PNG format (depth {depth}, color type {color})"
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left, up = line[i - bpp] if i >= bpp else 0, prev[i]
            corner = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i : i + 3]) for r in rows[:: max(1, height // 200)] for i in range(0, stride, bpp)]


def readme_mermaid() -> str:
    with open(README, encoding="utf-8") as fh:
        block = readme_block(fh.read())
    return block.removeprefix("```mermaid\n").removesuffix("```\n")


def test_readme_diagram_renders_to_a_png_with_content(mmdc, tmp_path):
    out = str(tmp_path / "architecture.png")
    done = draw(mmdc, readme_mermaid(), out)
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, pixels = png_pixels(out)
    assert width >= 600 and height >= 600, (width, height)
    colours = set(pixels)
    ink = sum(p != b"\xff\xff\xff" for p in pixels) / len(pixels)
    # Boxes, nodes, arrows and text: many colours, and a real share of the picture not background.
    assert len(colours) > 20 and ink > 0.05, (len(colours), ink)


def test_every_node_label_is_on_the_rendered_picture(mmdc, tmp_path):
    source = readme_mermaid()
    out = str(tmp_path / "architecture.svg")
    done = draw(mmdc, source, out)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out, encoding="utf-8") as fh:
        svg = html.unescape(fh.read())
    labels = re.findall(r'^\s*\w+\(?\["([^"]+)"\]\)?$', source, re.M)
    assert len(labels) > 20
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", svg))
    missing = [part for label in labels for part in label.split("<br/>") if part not in text]
    assert not missing, missing


def test_a_syntax_error_fails_the_render(mmdc, tmp_path):
    done = draw(mmdc, "flowchart TB\n  a[unclosed --> b\n", str(tmp_path / "broken.png"))
    assert done.returncode != 0
