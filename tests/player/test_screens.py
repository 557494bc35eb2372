"""Several screens: config, seeds, state layout, per-screen render, hotplug logic."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import assert_config_error
from passersby.cli import main as cli
from passersby.common import config, state
from passersby.common.config import LookConfig, WeightsConfig
from passersby.player import screens
from passersby.unit.hotplug import Assigner, DeskSlots, Monitor


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


# -- config --

def test_screens_merge_partial_look_and_weights_over_the_global_ones(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, {
        "look": {"grain": 0.1},
        "screens": [{"monitor": 0},
                    {"monitor": 1, "seed_offset": 7, "size": [640, 360],
                     "look": {"painterly": 0.2}, "weights": {"generator": "other-world"}}]}))
    a, b = cfg.screens
    assert a.look == cfg.look and a.look.grain == 0.1 and a.weights == cfg.weights
    assert a.size is None and a.seed_offset == 0
    assert b.look.painterly == 0.2 and b.look.grain == 0.1          # global keys carry over
    assert b.look.vignette == LookConfig().vignette
    assert b.weights.generator == "other-world"
    assert b.weights.encoder == WeightsConfig().encoder
    assert b.size == (640, 360) and b.monitor == 1 and b.seed_offset == 7
    assert config.to_dict(cfg)["screens"][1]["look"]["painterly"] == 0.2


def test_no_screens_is_one_screen_from_display_and_look(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, {"display": {"monitor": 2}, "look": {"warmth": 0.3}}))
    assert cfg.screens == ()
    (only,) = screens.entries(cfg)
    assert only.monitor == 2 and only.look.warmth == 0.3 and only.seed_offset == 0
    assert config.load(write(tmp_path, {"screens": None})).screens == ()


@pytest.mark.parametrize("data, words", [
    ({"screens": {"monitor": 1}}, ["screens = ", "expected a list of screens"]),
    ({"screens": [{"monitor": 0}, 3]}, ["screens[1] = 3", "mapping"]),
    ({"screens": [{"monitor": 0}, {"monitr": 1}]}, ["unknown key screens[1].monitr",
                                                    "seed_offset"]),
    ({"screens": [{"monitor": 0}, {"monitor": 1, "look": {"painterly": 4}}]},
     ["screens[1].look.painterly = 4", "0.0 to 1.0"]),
    ({"screens": [{"monitor": 0}, {"monitor": 1, "look": {"paintrly": 0.1}}]},
     ["unknown key screens[1].look.paintrly", "painterly"]),
    ({"screens": [{"monitor": 0, "look": "warm"}]}, ["screens[0].look = 'warm'", "mapping"]),
    ({"screens": [{"monitor": 0, "weights": {"generator": 5}}]},
     ["screens[0].weights.generator = 5", "text"]),
    ({"screens": [{"monitor": 0, "size": [640]}]}, ["screens[0].size", "list of 2"]),
    ({"screens": [{"monitor": 0, "size": [8, 8]}]}, ["screens[0].size[0] = 8", "16 to 16384"]),
    ({"screens": [{"monitor": 17}]}, ["screens[0].monitor = 17", "0 to 16"]),
    ({"screens": [{"monitor": 0, "seed_offset": -1}]}, ["screens[0].seed_offset = -1"]),
    ({"screens": [{"monitor": 0}, {"monitor": 0, "seed_offset": 1}]},
     ["screens[1].monitor = 0", "screens[0] is on that monitor"]),
    ({"screens": [{"monitor": 0}, {"monitor": 1}]},
     ["screens[1].seed_offset = 0", "own seed_offset"]),
])
def test_bad_screens_name_file_key_value_and_fix(tmp_path: Path, data: dict, words: list) -> None:
    assert_config_error(write(tmp_path, data), words)


def test_same_offset_is_fine_with_other_weights(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, {"screens": [
        {"monitor": 0}, {"monitor": 1, "weights": {"generator": "another"}}]}))
    assert len(cfg.screens) == 2


# -- seeds, state layout, output names --

def test_screen_seeds_are_deterministic_distinct_and_invertible() -> None:
    ed = 0x1234
    assert screens.screen_seed(ed, 0) == ed               # offset 0: the edition's own stream
    seeds = {screens.screen_seed(ed, k) for k in range(50)}
    assert len(seeds) == 50 and all(0 <= s < 1 << 128 for s in seeds)
    assert screens.screen_seed(ed, 3) == screens.screen_seed(ed, 3)
    assert screens.screen_seed(screens.screen_seed(ed, 3), 3) == ed
    assert screens.screen_seed(ed + 1, 3) != screens.screen_seed(ed, 3)


def test_plans_keep_screen0_in_the_state_folder_and_find_the_edition(tmp_path: Path) -> None:
    cfg = config.load(None, {"screens": [{"monitor": 0}, {"monitor": 1, "seed_offset": 5,
                                                          "size": [320, 200]}]})
    p0, p1 = screens.plans(cfg, tmp_path)
    assert p0.state_dir == tmp_path and p1.state_dir == tmp_path / "screen1"
    assert p1.cfg.render.size == (320, 200) and p0.cfg.render.size == cfg.render.size
    assert p1.cfg.stream.seed == screens.screen_seed(p0.cfg.stream.seed, 5)
    assert p1.cfg.display.monitor == 1 and p1.cfg.screens == ()
    # the edition is recovered from screen 1's saved state alone (screen 0's lost)
    state.Saver(p1.state_dir).save(state.State(p1.cfg.stream.seed, 3, 3, None, "x"))
    again = screens.plans(cfg, tmp_path)
    assert [p.cfg.stream.seed for p in again] == [p0.cfg.stream.seed, p1.cfg.stream.seed]
    # a single-screen unit's state: screen 0 goes on with its edition
    solo = tmp_path / "solo"
    state.Saver(solo).save(state.State(0xABC, 9, 9, None, "x"))
    q0, q1 = screens.plans(cfg, solo)
    assert q0.cfg.stream.seed == 0xABC and q1.cfg.stream.seed == screens.screen_seed(0xABC, 5)


def test_output_paths() -> None:
    assert screens.output_path(Path("r/out.mp4"), 0, 1) == Path("r/out.mp4")
    assert screens.output_path(Path("r/out.mp4"), 1, 2) == Path("r/out.screen1.mp4")
    assert screens.output_path(Path("pngs"), 0, 2) == Path("pngs/screen0")


# -- render: each screen its own stream --

def _pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f)) for f in sorted(folder.glob("*.png"))])


def test_two_screen_render_writes_two_different_streams(tmp_path: Path) -> None:
    cfg = write(tmp_path, {"screens": [{"monitor": 0},
                                       {"monitor": 1, "seed_offset": 1,
                                        "look": {"painterly": 0.0}}]})
    common = ["--seconds", "1.5", "--fps", "4", "--size", "64x64", "--seed", "0x5eed"]
    assert cli.main(["render", "--config", str(cfg), "--out", str(tmp_path / "two"),
                     "--state", str(tmp_path / "st"), *common]) == 0
    a, b = _pngs(tmp_path / "two" / "screen0"), _pngs(tmp_path / "two" / "screen1")
    assert a.shape == b.shape == (6, 64, 64, 3)
    centre = (slice(None), slice(16, 48), slice(20, 44))
    assert np.abs(a[centre].astype(int) - b[centre].astype(int)).mean() > 10, "two streams"
    assert not list((tmp_path / "two").glob("*.png"))
    # screen 0 (offset 0) is the edition's own stream: the single-screen render, exactly
    assert cli.main(["render", "--out", str(tmp_path / "one"), *common]) == 0
    assert np.array_equal(a, _pngs(tmp_path / "one"))
    s0, s1 = state.load(tmp_path / "st"), state.load(tmp_path / "st" / "screen1")
    assert s0.seed == 0x5EED and s1.seed == screens.screen_seed(0x5EED, 1) and s1.step > 0


# -- hotplug, with a fake monitor list --

A, B, C = (Monitor(n, (x, 0), (1920, 1080)) for n, x in (("HDMI-1", 0), ("DP-1", 1920),
                                                          ("DP-2", 3840)))


def _acts(changes: list) -> list[tuple[str, int, str | None]]:
    return [(c.action, c.screen, c.monitor.name if c.monitor else None) for c in changes]


def test_hotplug_unplug_and_replug_reopens_on_the_same_monitor(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, "passersby.unit.hotplug")
    h = Assigner([0, 1])
    assert _acts(h.update([A, B])) == [("open", 0, "HDMI-1"), ("open", 1, "DP-1")]
    assert h.update([A, B]) == []
    # screen 0's monitor unplugged: the list shifts, DP-1 is index 0 now; screen 1 stays
    assert _acts(h.update([B])) == [("close", 0, None)]
    assert h.update([B]) == [] and h.on == [None, "DP-1"]
    assert _acts(h.update([B, A])) == [("open", 0, "HDMI-1")]   # back, in another list order
    assert h.on == ["HDMI-1", "DP-1"]
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("HDMI-1 disconnected" in m for m in msgs) == 1
    assert sum("HDMI-1 is back" in m for m in msgs) == 1
    assert not any("no monitor for it" in m for m in msgs)


def test_hotplug_missing_at_boot_waits_then_opens(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, "passersby.unit.hotplug")
    h = Assigner([0, 1])
    assert _acts(h.update([A])) == [("open", 0, "HDMI-1")]
    for _ in range(3):
        assert h.update([A]) == []
    assert sum("screen 1: no monitor" in r.getMessage() for r in caplog.records) == 1
    assert _acts(h.update([A, B])) == [("open", 1, "DP-1")]


def test_hotplug_other_connector_and_failed_open() -> None:
    h = Assigner([0, 1])
    h.update([A, B])
    assert _acts(h.update([A])) == [("close", 1, None)]
    # DP-1 never comes back, a monitor appears on another connector: it is used
    assert _acts(h.update([A, C])) == [("open", 1, "DP-2")]
    # unplugging screen 0's monitor does not pull screen 0 onto screen 1's
    assert _acts(h.update([C])) == [("close", 0, None)]
    assert h.update([C]) == []
    # an open that fails is tried again on the next update
    got = h.update([C, A])
    assert _acts(got) == [("open", 0, "HDMI-1")]
    h.failed(0)
    assert _acts(h.update([C, A])) == [("open", 0, "HDMI-1")]


def test_desk_slots_side_by_side() -> None:
    slots = DeskSlots([(320, 240), (200, 100)]).monitors()
    assert [(m.pos, m.size, m.handle) for m in slots] == [((0, 0), (320, 240), None),
                                                         ((320, 0), (200, 100), None)]
