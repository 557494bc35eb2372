"""Live tuning: the config file watched, nudges, write-back that keeps comments, OSC."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from passersby.common import config
from passersby.player import tune

ARTIST = """# my evening settings
look:
  painterly: 0.5     # oil, but not too much
  grain: 0.02
traversal:
  transform:
    zoom: 1.1        # breathe in
stream:
  keyframes_per_second: 4.0
"""


def touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()  # a new mtime even within the filesystem's resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_set_in_yaml_keeps_comments_and_adds_missing_keys() -> None:
    text = tune.set_in_yaml(ARTIST, "look.painterly", 0.62)
    text = tune.set_in_yaml(text, "traversal.transform.zoom", 1.2)
    text = tune.set_in_yaml(text, "look.vignette", 0.3)             # missing key
    text = tune.set_in_yaml(text, "traversal.transform.mirror", True)
    text = tune.set_in_yaml(text, "display.vsync", False)           # missing section
    assert "  painterly: 0.62     # oil, but not too much" in text
    assert "    zoom: 1.2        # breathe in" in text
    assert text.startswith("# my evening settings\n")
    data = yaml.safe_load(text)
    assert data["look"] == {"painterly": 0.62, "grain": 0.02, "vignette": 0.3}
    assert data["traversal"]["transform"] == {"zoom": 1.2, "mirror": True}
    assert data["display"] == {"vsync": False} and data["stream"]["keyframes_per_second"] == 4.0


def test_nudges_are_bounded_and_cycle() -> None:
    items = {t.key: t for t in tune.tunables()}
    assert {"look.painterly", "traversal.transform.zoom", "traversal.mode",
            "traversal.transform.mirror"} <= set(items)
    assert tune.nudged(items["look.painterly"], 0.99, +1) == 1.0  # clamped to the range
    assert tune.nudged(items["look.painterly"], 0.5, -1) == pytest.approx(0.48)
    assert tune.nudged(items["traversal.transform.mirror"], False, 1) is True
    modes = items["traversal.mode"].choices
    assert tune.nudged(items["traversal.mode"], modes[-1], 1) == modes[0]
    # a wide range moves by a fraction of the value, not of the range
    assert tune.nudged(items["traversal.correlation_seconds"], 5.0, 1) == pytest.approx(5.25)


def test_file_edits_apply_and_bad_edits_keep_the_last_good(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    touch(path, ARTIST)
    t = tune.Tuning(path, {"stream": {"seed": 7}})
    assert t.cfg.look.painterly == 0.5 and t.cfg.stream.seed == 7
    assert not t.poll()
    assert t.set("look.grain", 0.05) and t.cfg.look.grain == 0.05
    touch(path, ARTIST.replace("painterly: 0.5", "painterly: 0.9"))
    assert t.poll() and t.cfg.look.painterly == 0.9
    assert t.cfg.look.grain == 0.05 and t.cfg.stream.seed == 7  # nudge and override stay
    touch(path, ARTIST.replace("painterly: 0.5", "painterly: 7"))
    assert not t.poll() and t.cfg.look.painterly == 0.9
    assert "look.painterly" in t.error and "7" in t.error and str(path) in t.error
    touch(path, ARTIST.replace("grain: 0.02", "grain: 0.01"))  # the file's edit of grain wins
    assert t.poll() and t.error is None and t.cfg.look.grain == 0.01
    assert not t.set("look.vignette", "lots")
    assert t.cfg.look.vignette == config.LookConfig().vignette
    assert "look.vignette" in t.error


def test_write_back_keeps_the_artists_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    touch(path, ARTIST)
    t = tune.Tuning(path)
    t.set("look.painterly", 0.66)
    t.set("traversal.transform.zoom", 1.3)
    t.write_back()
    text = path.read_text()
    assert "# my evening settings" in text and "# oil, but not too much" in text
    again = config.load(path)
    assert again.look.painterly == 0.66 and again.traversal.transform.zoom == 1.3
    assert not t.nudges and not t.poll()  # its own write is not an edit to re-apply


def test_osc_over_loopback(tmp_path: Path) -> None:
    from pythonosc.udp_client import SimpleUDPClient

    osc = tune.OscInput("127.0.0.1", 0)  # 0: any free port
    try:
        host, port = osc.address
        assert host == "127.0.0.1"
        client = SimpleUDPClient(host, port)
        client.send_message("/passersby/look/painterly", 0.25)
        client.send_message("/passersby/traversal/transform/zoom", 1.5)
        client.send_message("/passersby/capture", [])
        got: list = []
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            got += osc.drain()
            time.sleep(0.02)
    finally:
        osc.close()
    assert got[:2] == [("look.painterly", 0.25), ("traversal.transform.zoom", 1.5)]
    assert got[2][0] == "capture"
    t = tune.Tuning(None)
    assert t.set(*got[0]) and t.cfg.look.painterly == 0.25


def test_osc_port_in_use_is_a_clear_error() -> None:
    a = tune.OscInput("127.0.0.1", 0)
    try:
        with pytest.raises(config.ConfigError, match="tune.osc_port"):
            tune.OscInput("127.0.0.1", a.address[1])
    finally:
        a.close()


def test_overlay_panel_shows_lines_highlight_and_wrapped_error() -> None:
    """The overlay's panel: text drawn, the selected line in amber, a long error wrapped
    in red, and the panel blended over the picture at the top left only."""
    import numpy as np

    from conftest import offscreen_or_skip
    from passersby.player.render.overlay import Overlay

    off = offscreen_or_skip((640, 360))
    try:
        off.fbo.use()
        off.ctx.clear(0.0, 0.0, 1.0)
        ov = Overlay(off.ctx)
        ov.set_text(["fps 60", "> look.painterly = 0.5"], highlight=1,
                    error="look.grain = 'lots': expected a number " + "x" * 150)
        ov.draw(off.fbo)
        img = off.read().astype(int)
    finally:
        off.release()
    amber = (img[..., 0] > 200) & (img[..., 1] > 150) & (img[..., 2] < 120)
    red = (img[..., 0] > 200) & (img[..., 1] < 140) & (img[..., 2] < 140)
    assert amber.sum() > 20 and red.sum() > 50
    rows = np.flatnonzero(red.any(axis=1))
    assert rows.max() - rows.min() > 25  # wrapped onto more than one line
    assert (img[-20:, -20:] == [0, 0, 255]).all()  # the picture elsewhere is untouched
