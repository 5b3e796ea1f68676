"""Render a page in headless Chromium and check the screenshot is a real, non-blank image."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        # `make test` installs Chromium where it can (root with apt); elsewhere, say how.
        # CI sets CONVSIM_REQUIRE_BROWSER, so there a missing browser fails the build
        # instead of letting the report checks pass unrun.
        why = "headless Chromium is not installed: run `sudo apt-get install chromium`"
        if os.environ.get("CONVSIM_REQUIRE_BROWSER"):
            pytest.fail(why)
        pytest.skip(why)
    return found


def screenshot(
    html: Path, png: Path, width: int = 1280, height: int = 1600
) -> tuple[int, int, int]:
    """Screenshot ``html``; return (width, height, distinct byte values in the pixel data)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    pixels = zlib.decompress(idat)
    return w, h, len(set(pixels))
