"""The wall in real glfw windows on Xvfb: one screen hung on its side (rotate 90) with
its own walk, beside an upright one; the rotation survives unplugging and plugging
back. The monitor list is scripted as in test_stage_window.py; the loop, windows,
pipelines (detail pass on) and streams are the real ones."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import yaml
from test_stage_window import (
    LEFT,
    RIGHT,
    W,
    moving,
    set_monitors,
    start_player,
    wait_for,
    xdisplay,  # noqa: F401  (xdisplay: the Xvfb fixture)
)


def portrait_box(img: np.ndarray, x0: int) -> tuple[int, int]:
    """(width, height) of what is not mat in one window's half of the screenshot."""
    half = img[:, x0:x0 + W]
    mat = np.array([0.10, 0.09, 0.085]) * 255
    ys, xs = np.nonzero(np.abs(half - mat).max(axis=2) > 12)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_a_screen_hung_on_its_side_with_its_own_walk(xdisplay: str, tmp_path: Path) -> None:  # noqa: F811
    cfg = tmp_path / "wall.yaml"
    cfg.write_text(yaml.safe_dump({
        "stream": {"seed": 0x17, "threads": 1, "keyframes_per_second": 4.0},
        "look": {"grain": 0.0, "work_size": 128, "painterly": 0.0},
        "screens": [{"monitor": 0},
                    {"monitor": 1, "seed_offset": 1, "rotate": 90,
                     "traversal": {"mode": "drift", "drift": {"correlation_seconds": 4.0}}}]}))
    proc, mons, _, log = start_player(xdisplay, tmp_path, cfg)
    shots: list = []
    try:
        wait_for(log, "screen 0: live stream", proc)
        wait_for(log, "screen 1: live stream", proc)
        time.sleep(1.0)
        assert moving(xdisplay, 0, shots) > 0.5 and moving(xdisplay, W, shots) > 0.5
        w0, h0 = portrait_box(shots[-1], 0)
        w1, h1 = portrait_box(shots[-1], W)
        assert h0 > w0, "the upright screen shows a portrait taller than wide"
        assert w1 > h1, "the screen hung on its side shows it turned: wider than tall"

        set_monitors(mons, [LEFT])                          # unplug the side-hung one
        wait_for(log, "monitor R disconnected", proc)
        set_monitors(mons, [LEFT, RIGHT])                   # and plug it back
        wait_for(log, "monitor R is back", proc)
        time.sleep(1.0)
        assert moving(xdisplay, W, shots) > 0.5
        w1, h1 = portrait_box(shots[-1], W)
        assert w1 > h1, "still turned after hotplug"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_text()
