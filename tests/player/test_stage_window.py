"""Two screens from one process in real glfw windows on a virtual X screen (Xvfb).

Xvfb has one monitor and cannot unplug it, so the run gets its monitor list from a
file this test rewrites (two regions of one Xvfb screen, side by side): the loop,
the windows, the pipelines and the streams are the real ones; only the list of
monitors is scripted. The test looks at the X screen itself (a screenshot), as a
visitor would.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import xvfb
from passersby.common import state
from passersby.player import screens

ROOT = Path(__file__).resolve().parents[2]
W, H = 320, 240
LEFT, RIGHT = ["L", 0, 0, W, H], ["R", W, 0, W, H]

CHILD = textwrap.dedent("""
    import json, logging, sys
    from pathlib import Path
    from passersby.common import config
    from passersby.player import stage
    from passersby.unit.hotplug import Monitor

    class FileMonitors:
        '''Monitors as [[name, x, y, w, h], ...] in a file the test rewrites.'''
        def __init__(self, path):
            self.path, self.mtime = Path(path), None
        def monitors(self):
            return [Monitor(n, (x, y), (w, h)) for n, x, y, w, h in
                    json.loads(self.path.read_text())]
        def changed(self):
            mtime = self.path.stat().st_mtime_ns
            changed, self.mtime = mtime != self.mtime, mtime
            return changed

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    result = stage.run(config.load(sys.argv[1]), Path(sys.argv[2]), windowed=False,
                       source=FileMonitors(sys.argv[3]))
    print("RESULT " + json.dumps(result), flush=True)
""")


@pytest.fixture()
def xdisplay() -> Iterator[str]:
    with xvfb(f"{2 * W}x{H}x24") as display:
        yield display


def grab(display: str) -> np.ndarray:
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB")).astype(np.int16)


def centre(img: np.ndarray, x0: int) -> np.ndarray:
    return img[H // 2 - 50:H // 2 + 50, x0 + W // 2 - 40:x0 + W // 2 + 40]


def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in log.read_text():
            return
        assert proc.poll() is None, f"the player exited early:\n{log.read_text()}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {timeout:.0f} s:\n{log.read_text()}")


def set_monitors(path: Path, monitors: list) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(monitors))
    os.replace(tmp, path)


def moving(display: str, x0: int, shots: list, within: float = 10.0) -> float:
    """Mean change of one screen's portrait over 1.5 s (grain is off: only the stream
    moves); tried again for up to `within` seconds while it is under 0.5 (two generators
    and llvmpipe share the test machine's cores: a keyframe can come late, and a late one
    is not a frozen screen), the largest change seen."""
    best, end = 0.0, time.monotonic() + within
    while True:
        a = grab(display)
        time.sleep(1.5)
        b = grab(display)
        shots += [a, b]
        best = max(best, float(np.abs(centre(a, x0) - centre(b, x0)).mean()))
        if best > 0.5 or time.monotonic() > end:
            return best


def start_player(xdisplay: str, tmp_path: Path, cfg: Path
                 ) -> tuple[subprocess.Popen, Path, Path, Path]:
    """The player (CHILD) on config `cfg` with both scripted monitors plugged in; returns
    (process, monitor list file, state folder, log file)."""
    mons, st, log = tmp_path / "monitors.json", tmp_path / "state", tmp_path / "log.txt"
    set_monitors(mons, [LEFT, RIGHT])
    env = {**os.environ, "DISPLAY": xdisplay, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WAYLAND_DISPLAY", None)
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(cfg), str(st), str(mons)],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    return proc, mons, st, log


def test_two_screens_play_and_survive_unplugging_one(xdisplay: str, tmp_path: Path) -> None:
    cfg = tmp_path / "two.yaml"
    cfg.write_text(yaml.safe_dump({
        "stream": {"seed": 0x2, "threads": 1, "keyframes_per_second": 4.0},
        "look": {"grain": 0.0, "work_size": 128},
        "screens": [{"monitor": 0}, {"monitor": 1, "seed_offset": 1,
                                     "look": {"painterly": 0.0, "warmth": -0.1}}]}))
    proc, mons, st, log = start_player(xdisplay, tmp_path, cfg)
    shots: list = []
    try:
        wait_for(log, "screen 0: live stream", proc)
        wait_for(log, "screen 1: live stream", proc)
        assert "vsync: screen 0 leads" in log.read_text()
        time.sleep(1.0)
        assert moving(xdisplay, 0, shots) > 0.5 and moving(xdisplay, W, shots) > 0.5
        both = shots[-1]
        assert np.abs(centre(both, 0) - centre(both, W)).mean() > 10, "two different streams"

        set_monitors(mons, [LEFT])                          # unplug the right monitor
        wait_for(log, "monitor R disconnected", proc)
        time.sleep(0.5)
        assert moving(xdisplay, 0, shots) > 0.5, "the other screen never stops"
        assert shots[-1][:, W:].max() < 8, "the right window is closed (black root)"

        set_monitors(mons, [LEFT, RIGHT])                   # plug it back
        wait_for(log, "monitor R is back", proc)
        time.sleep(1.0)
        assert moving(xdisplay, W, shots) > 0.5 and moving(xdisplay, 0, shots) > 0.5
        assert centre(shots[-1], W).max() > 40, "the right window shows a portrait again"

        set_monitors(mons, [RIGHT])                         # now unplug the left one
        wait_for(log, "monitor L disconnected", proc)
        wait_for(log, "vsync: screen 1 leads", proc)
        time.sleep(0.5)
        assert moving(xdisplay, W, shots) > 0.5, "the right screen, now leading, moves on"
        assert shots[-1][:, :W].max() < 8, "the left window is closed"
    finally:
        keep = os.environ.get("PASSERSBY_TEST_SHOTS")
        if keep and shots:
            from PIL import Image

            Path(keep).mkdir(parents=True, exist_ok=True)
            for i, s in enumerate(shots):
                Image.fromarray(s.astype(np.uint8)).save(Path(keep) / f"stage-{i:02d}.png")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text
    result = json.loads(out.split("RESULT ", 1)[1])
    assert min(result["steps"]) > 8, result
    assert text.count("monitor R disconnected") == 1 and text.count("monitor R is back") == 1
    s0, s1 = state.load(st), state.load(st / "screen1")
    assert s0.seed == 0x2 and s1.seed == screens.screen_seed(0x2, 1)
    assert s0.step >= result["steps"][0] and s1.step >= result["steps"][1]
    assert (st / "last.png").exists() and (st / "screen1" / "last.png").exists()


def test_run_cli_fullscreen_on_glfw_monitors_second_screen_waits(xdisplay: str,
                                                                  tmp_path: Path) -> None:
    """`passersby run` with two screens and Xvfb's one glfw monitor: screen 0 goes
    fullscreen on it, screen 1 has no monitor, says so once, and its stream runs on."""
    cfg = tmp_path / "two.yaml"
    cfg.write_text(yaml.safe_dump({
        "stream": {"threads": 1}, "look": {"work_size": 128},
        "screens": [{"monitor": 0}, {"monitor": 1, "seed_offset": 3}]}))
    st, log = tmp_path / "state", tmp_path / "log.txt"
    env = {**os.environ, "DISPLAY": xdisplay, "OMP_NUM_THREADS": "1"}
    env.pop("WAYLAND_DISPLAY", None)
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "passersby", "run", "--config", str(cfg),
                                 "--state", str(st), "--seed", "0x77"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        wait_for(log, "screen 0: live stream", proc)
        wait_for(log, "screen 1: live stream", proc)
        time.sleep(2.0)
        shot = grab(xdisplay)
        assert centre(shot, W // 2).std() > 10, "a portrait, fullscreen over the whole X screen"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "window 640x240 (fullscreen)" in text, text
    assert text.count("screen 1: no monitor for it (wants index 1; 1 connected") == 1, text
    steps = [int(s) for s in out.split("now at step ")[1].split(";")[0].split(", ")]
    assert len(steps) == 2 and min(steps) > 0, out
    s0, s1 = state.load(st), state.load(st / "screen1")
    assert s0.seed == 0x77 and s1.seed == screens.screen_seed(0x77, 3)
    assert s1.step >= steps[1] > 0, "the unseen screen's stream ran and kept its place"
