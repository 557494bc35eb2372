"""Boot to picture: the last shown keyframe, kept rarely and cheaply, is on screen
before torch and the weights load; the live stream then morphs out of it.

Neither torch nor GL here: numpy, Pillow and threads.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from passersby.common import png

log = logging.getLogger(__name__)
STILL = "last.png"
STILL_SECONDS = 300.0  # the boot picture is at most this old (flash: ~80 KB a write)
T = TypeVar("T")


def process_age() -> float:
    """Seconds since this process started (Linux /proc), else since first call."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        return float(Path("/proc/uptime").read_text().split()[0]) - start
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _T0


_T0 = time.perf_counter()


MAX_STILL_SIDE = 4096  # the chain's pictures are 64-256 px; more is not ours


def load_still(folder: Path | None) -> np.ndarray | None:
    """The last shown keyframe [H,W,3] uint8, or None (first start; a file that is
    unreadable or hostile: a decompression bomb, a huge or odd-sized picture): the
    screen then starts from the mat, never a crash loop."""
    if folder is None or not (folder / STILL).exists():
        return None
    try:
        from PIL import Image

        with Image.open(folder / STILL) as im:
            w, h = im.size
            if not (16 <= w <= MAX_STILL_SIDE and 16 <= h <= MAX_STILL_SIDE) or \
                    w % 16 or h % 16:
                raise ValueError(f"{w}x{h} px, not a keyframe's size")
            still = np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds (SyntaxError, zlib...)
        log.warning("last picture %s is unreadable (%s); starting from the mat",
                    folder / STILL, str(e)[:200])
        return None
    return still if still.shape == (h, w, 3) else None


def still_seconds(save_seconds: float) -> float:
    """How often the boot picture is kept: with the place, but at most every STILL_SECONDS
    (it is only the picture shown while a restart loads; the exact place is the state's)."""
    return max(STILL_SECONDS, save_seconds)


def blank(size: tuple[int, int], rgb: tuple[float, ...]) -> np.ndarray:
    """A keyframe [H,W,3] of one colour (the mat's), for a first start: never black."""
    return np.broadcast_to((np.array(rgb[:3]) * 255).round().astype(np.uint8),
                           (size[1], size[0], 3)).copy()


class StillKeeper:
    """Writes the shown keyframe as a PNG at most every `every_s` seconds (atomic)."""

    def __init__(self, folder: Path | None, every_s: float) -> None:
        self.folder, self.every_s = folder, every_s
        self.last_t, self.last_step, self.failed = -1e18, -1, False

    def offer(self, step: int, image: np.ndarray, force: bool = False) -> None:
        now = time.monotonic()
        if self.folder is None or step == self.last_step or \
                (not force and now - self.last_t < self.every_s):
            return
        self.last_t, self.last_step = now, step
        try:  # atomic, not fsync'd: only the picture shown while a restart loads (flash)
            self.folder.mkdir(parents=True, exist_ok=True)
            png.write_png(self.folder / STILL, image, fsync=False)
            self.failed = False
        except OSError as e:
            if not self.failed:
                log.warning("cannot keep the last picture in %s (%s)", self.folder, e)
            self.failed = True


class Opener(Generic[T]):
    """Runs a slow start-up (torch, weights, producer) in a thread; the caller polls."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn, self._value, self._error = fn, None, None
        self._done = threading.Event()
        threading.Thread(target=self._run, name="passersby-open", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as e:  # handed to the caller's thread by result()
            self._error = e
        self._done.set()

    def result(self) -> T | None:
        """The value once ready, None before; re-raises the start-up's error."""
        if not self._done.is_set():
            return None
        if self._error is not None:
            raise self._error
        return self._value
