"""Offscreen EGL target and the glfw window (the window under its own Xvfb)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import offscreen_or_skip
from passersby.common.config import LookConfig
from passersby.player.display import DisplayError, Offscreen
from passersby.player.render.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def off() -> Offscreen:
    target = offscreen_or_skip((80, 60))
    yield target
    target.release()


def test_offscreen_basics(off: Offscreen) -> None:
    assert off.size == (80, 60) and off.fbo.size == (80, 60)
    off.fbo.use()
    off.fbo.clear(0.0, 1.0, 0.0, 1.0)
    img = off.read()
    assert img.shape == (60, 80, 3) and img.dtype == np.uint8
    assert (img == (0, 255, 0)).all()
    assert off.read() is img                       # preallocated, reused


def test_offscreen_read_is_top_row_first(off: Offscreen) -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:32] = (255, 0, 0)                       # top half red
    frame[32:] = (0, 0, 255)                       # bottom half blue
    plain = dataclasses.replace(
        LookConfig(), painterly=0.0, sharpen=0.0, vignette=0.0, grain=0.0, work_size=64,
        portrait_height=1.0, aspect=80 / 60, frame_width=0.0, contrast=1.0, saturation=1.0,
        warmth=0.0)
    p = Pipeline(off.ctx, plain, (64, 64))
    p.set_keyframes(frame, frame)
    p.render(off.fbo, 0.0, 0.0)
    img = off.read().astype(int)
    assert img[2, 40, 0] > 200 and img[2, 40, 2] < 40      # top is red
    assert img[57, 40, 2] > 200 and img[57, 40, 0] < 40    # bottom is blue
    p.release()


def test_offscreen_rejects_bad_size() -> None:
    with pytest.raises(DisplayError, match="0x10"):
        Offscreen((0, 10))


# The window runs in a child process: glfw is process-global and wants its own display.
WINDOW_SCRIPT = textwrap.dedent("""
    import json, sys
    import glfw
    import numpy as np
    from passersby.common.config import LookConfig
    from passersby.player.display import DisplayError, Window
    from passersby.player.render.pipeline import Pipeline

    out = {}
    with Window("passersby test", 0, False, (320, 240), vsync=False) as win:
        p = Pipeline(win.ctx, LookConfig(), (64, 64))
        p.set_keyframes(np.full((64, 64, 3), 200, np.uint8), np.full((64, 64, 3), 90, np.uint8))
        win.poll()
        p.render(win.fbo, 0.5, 0.0)
        px = win.read()
        win.swap()
        out["size"], out["max"] = list(win.size), int(px.max())
        out["open"] = not win.should_close()
        win._on_key(win._win, glfw.KEY_ESCAPE, 0, glfw.PRESS, 0)
        out["esc_closes"] = win.should_close()
        glfw.set_window_size(win._win, 400, 300)
        for _ in range(50):
            win.poll()
            if win.size == (400, 300):
                break
        p.render(win.fbo, 0.5, 0.0)
        px = win.read()                            # top row first
        out["resized"] = [list(win.fbo.size), int(px[150, 200].max()), px[0, 399].tolist()]
        p.release()
    with Window("passersby test", 0, True, (320, 240), vsync=True) as win:
        out["fullscreen"] = list(win.fbo.size)
    a = Window("screen a", 0, False, (200, 100), vsync=False)
    b = Window("screen b", 0, False, (120, 80), vsync=False)
    a.close()                                      # must not take b's glfw with it
    b.make_current()
    b.fbo.use()
    b.fbo.clear(0.0, 1.0, 0.0)
    out["two_windows"] = b.read()[40, 60].tolist()
    b.poll()
    b.close()
    try:
        Window("passersby test", 7, True, (320, 240))
    except DisplayError as e:
        out["bad_monitor"] = str(e)
    print("RESULT " + json.dumps(out))
""")


def _window_command() -> list[str]:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return [sys.executable, "-c", WINDOW_SCRIPT]
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.skip("no DISPLAY and no xvfb-run: apt-get install -y xvfb xauth to test windows")
    return [xvfb, "-a", "-s", "-screen 0 1280x720x24 -noreset", sys.executable, "-c", WINDOW_SCRIPT]


def test_window_opens_renders_and_closes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(_window_command(), capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=env)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert run.returncode == 0 and line, f"window script failed:\n{run.stdout}\n{run.stderr}"
    out = json.loads(line[len("RESULT "):])
    assert out["size"] == [320, 240] and out["max"] > 0 and out["open"]
    assert out["esc_closes"]
    size, centre, top_right = out["resized"]
    assert size == [400, 300] and centre > 0
    # the mat reaches the new edge
    assert top_right == [round(c * 255) for c in LookConfig().mat_color]
    assert out["fullscreen"][0] > 0
    assert out["two_windows"] == [0, 255, 0]
    assert "monitor index 7 is out of range: 1 monitor(s) found" in out["bad_monitor"]


def test_window_without_display_says_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT)
    code = ("from passersby.player.display import Window, DisplayError\n"
            "try:\n    Window('t', 0, False, (64, 64))\n"
            "except DisplayError as e:\n    print('ERR', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert "ERR no display" in run.stdout and "passersby render" in run.stdout, run.stderr
