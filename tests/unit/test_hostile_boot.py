"""Issue 16, class 7: a boot picture (last.png) that is hostile rather than broken starts
from the mat, never a crash loop."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from passersby.unit import boot


def png_header(w: int, h: int, body: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.parametrize("content", [
    png_header(100_000, 100_000),                    # a decompression bomb (PIL raises its own)
    png_header(8192, 8192, zlib.compress(b"\0" * 1000)),  # large, truncated data
    png_header(64, 64, b"not zlib"),                 # corrupt data
    png_header(64, 64),
    b"GIF89a" + b"\0" * 100,
    b"\x89PNG\r\n\x1a\n" + b"\xff" * 64,
])
def test_hostile_still_starts_from_the_mat(tmp_path: Path, content: bytes, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / boot.STILL).write_bytes(content)
    assert boot.load_still(tmp_path) is None
    assert "unreadable" in caplog.text


def test_a_good_still_still_loads(tmp_path: Path) -> None:
    from PIL import Image

    image = (np.arange(64 * 64 * 3) % 251).astype(np.uint8).reshape(64, 64, 3)
    Image.fromarray(image).save(tmp_path / boot.STILL)
    assert np.array_equal(boot.load_still(tmp_path), image)
