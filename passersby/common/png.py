"""The one atomic PNG writer: stills, captures, frames of a render, the boot picture.

A PNG goes to a hidden temp name beside its target (".NAME.tmp"), is optionally
fsync'd, then renamed over the target, so an interruption (a kill, a power cut, a
full disk) never leaves a half file under the real name. Errors are OSError: each
caller says what failed in its own words (a still, a capture, a frame).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

TMP_PREFIX = "."     # temp files: .still-0001.png.tmp


def temp_path(path: Path) -> Path:
    """Where `path` is written before it is renamed into place."""
    return path.with_name(f"{TMP_PREFIX}{path.name}.tmp")


def write_png(path: Path, image: np.ndarray, text: dict[str, str] | None = None,
              compress_level: int = 6, fsync: bool = True) -> None:
    """[H,W,3] uint8, top row first -> PNG at `path`, atomically (see the module doc).
    `text`: tEXt chunks; `fsync`: on for files that are kept (stills, captures), off
    where the rate matters more than a power cut (a render's frames)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    tmp = temp_path(Path(path))
    try:
        with open(tmp, "wb") as f:
            Image.fromarray(image, "RGB").save(f, format="PNG", pnginfo=info,
                                               compress_level=compress_level)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
