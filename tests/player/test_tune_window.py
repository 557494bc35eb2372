"""`run --tune` in a real glfw window under Xvfb, driven by synthetic key events and a
config file edited while it plays: nudges apply live, W writes them back keeping the
comments, C captures with a bookmark, a bad edit keeps the last good config and shows
the error on screen, a fixed edit applies."""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import isolated, xvfb
from passersby.common import bookmarks
from passersby.player import instruments, stage, tune

ARTIST = """# the artist's file
look:
  painterly: 0.5     # oil, not too much
  grain: 0.0
  work_size: 128
stream:
  threads: 1
tune:
  osc_port: 0        # no OSC in this test
"""


def edit(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@isolated
def test_tune_session_keys_edits_capture_and_overlay(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import glfw
    from PIL import Image, ImageGrab

    path, root = tmp_path / "artist.yaml", tmp_path / "state"
    edit(path, ARTIST)
    tuning = tune.Tuning(path, {"stream": {"seed": 0x7E}})
    painterly = [t.key for t in tune.tunables()].index("look.painterly")
    script: list = []
    seen: dict = {}
    original = instruments.Instruments.tick

    def tick(self, st) -> None:  # type: ignore[no-untyped-def]
        """The test's hand on the keyboard, one action per moment, in the render loop."""
        screen = st.screens[0]
        now = time.monotonic()
        if screen.shown is not None and not script:
            keys = [(glfw.KEY_DOWN, 0)] * painterly + [(glfw.KEY_RIGHT, 0)] * 3 + \
                [(glfw.KEY_C, 0), (glfw.KEY_W, 0), (glfw.KEY_R, 0)]
            script.extend([("keys", keys, now), ("bad", None, now + 2), ("shot", None, now + 4),
                           ("good", None, now + 5), ("keys", [(glfw.KEY_R, 0)], now + 6),
                           ("check", None, now + 7), ("stop", None, now + 8)])
        while script and script[0][2] <= now and script[0][0] != "done":
            what, arg, _ = script.pop(0)
            if what == "keys":
                screen.window.keys.extend(arg)
            elif what == "bad":
                edit(path, path.read_text().replace("grain: 0.0", "grain: lots"))
            elif what == "shot" and self.tuning.error is None and len(seen) < 60:
                # the watcher has not read the bad edit yet (a loaded machine): wait,
                # and move the rest of the script on by as long
                seen[f"wait{len(seen)}"] = True
                script[:0] = [(what, arg, now + 0.5)]
                script[1:] = [(w, a, t + 0.5) for w, a, t in script[1:]]
                break
            elif what == "shot":
                seen["shot"] = np.asarray(ImageGrab.grab(xdisplay=os.environ["DISPLAY"]))
                seen["error"] = self.tuning.error
            elif what == "good":
                edit(path, path.read_text().replace("grain: lots", "grain: 0.01"))
            elif what == "check":
                seen["grain"] = screen.pipe.look.grain
                seen["painterly"] = screen.pipe.look.painterly
            elif what == "stop":
                st.stopping = True
                script.append(("done", None, 0))
        original(self, st)

    monkeypatch.setattr(instruments.Instruments, "tick", tick)
    with xvfb("800x600x24") as display:
        monkeypatch.setenv("DISPLAY", display)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        cfg = tuning.cfg
        result = stage.run(cfg, root, windowed=True, max_seconds=240, tuning=tuning)
    assert script and script[-1][0] == "done", f"the session never went live: {result}"
    # the nudges applied live and went into the file, comments kept
    assert seen["painterly"] == pytest.approx(0.56)
    text = path.read_text()
    assert "painterly: 0.56     # oil, not too much" in text and "# the artist's file" in text
    # the bad edit was refused on screen, the fixed one applied
    assert "look.grain" in seen["error"] and "lots" in seen["error"]
    assert seen["grain"] == 0.01
    Image.fromarray(seen["shot"]).save(tmp_path / "overlay.png")
    red = (seen["shot"][..., 0] > 200) & (seen["shot"][..., 1] < 140)
    assert red.sum() > 50, "the error line is not on screen"
    # R ... R: the screen went to an MP4 meanwhile
    import imageio_ffmpeg

    movies = list((root / "captures").glob("recording-*.mp4"))
    assert len(movies) == 1
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(movies[0]))
    assert frames > 5
    # the capture: full output resolution, and a bookmark that names it
    shots = list((root / "captures").glob("capture-*.png"))
    assert len(shots) == 1 and Image.open(shots[0]).size == (960, 1080)
    rows = sqlite3.connect(root / bookmarks.FILE).execute(
        "SELECT kind, seed, step, image FROM bookmarks").fetchall()
    assert len(rows) == 1 and rows[0][0] == "capture" and rows[0][1] == f"{0x7E:032x}"
    assert rows[0][3] == f"captures/{shots[0].name}" and f"{rows[0][2]:09d}" in shots[0].name
