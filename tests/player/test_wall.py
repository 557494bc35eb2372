"""The wall: painted detail at output size, screens hung on their side, two characters.

GL tests render to small offscreen framebuffers and assert pixel values; the taste
test plays two screens' streams through their own per-screen traversal configs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import assert_config_error, offscreen_or_skip
from passersby.common import config
from passersby.common.config import LookConfig, TraversalConfig
from passersby.generator import taste
from passersby.player import screens

ROOT = Path(__file__).resolve().parents[2]
LOOK = dataclasses.replace(LookConfig(), grain=0.0, work_size=64)
W, H = 120, 150


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def portrait_keyframe(seed: int = 0) -> np.ndarray:
    """A 64 px keyframe with form: a bright oval face on a dark ground, soft edges."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    face = np.exp(-(((x - 32) / 14) ** 2 + ((y - 30) / 19) ** 2) ** 2)
    noise = np.random.default_rng(seed).normal(0, 2, (64, 64, 1))
    img = 40 + 170 * face[..., None] * np.array([1.0, 0.85, 0.7]) + noise
    return np.clip(img, 0, 255).astype(np.uint8)


def render(look: LookConfig, size: tuple[int, int], rotate: int = 0) -> np.ndarray:
    from passersby.player.render.pipeline import Pipeline

    off = offscreen_or_skip(size)
    try:
        pipe = Pipeline(off.ctx, look, (64, 64))
        pipe.set_keyframes(portrait_keyframe(), portrait_keyframe())
        pipe.render(off.fbo, 1.0, 0.0, rotate)
        out = off.read().astype(np.float32)
        pipe.release()
    finally:
        off.release()
    return out


def energy(img: np.ndarray, look: LookConfig) -> float:
    """bench/detail.py's measure: mean |DoG 1.5 - 3| of grey inside the portrait."""
    spec = importlib.util.spec_from_file_location("bench_detail", ROOT / "bench" / "detail.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    from passersby.player.render.pipeline import portrait_rect

    x, y, w, h = portrait_rect((img.shape[1], img.shape[0]), look)
    return mod.dog_energy(mod.grey(mod.inner(img, (x, img.shape[0] - y - h, w, h))))


# -- detail at output size --

def test_detail_raises_detail_energy_and_keeps_the_picture() -> None:
    size = (2 * W, 2 * H)                  # the portrait enlarged ~4x from 64 px, as on a wall
    off_, on = render(dataclasses.replace(LOOK, detail=0.0), size), render(LOOK, size)
    e_off, e_on = energy(off_, LOOK), energy(on, LOOK)
    assert e_on > 2.0 * e_off, (e_off, e_on)
    # the same portrait: the mean colour of the face moves little (varnish is a tint)
    face = (slice(100, 160), slice(90, 150))
    assert np.abs(on[face].mean((0, 1)) - off_[face].mean((0, 1))).max() < 18
    assert np.abs(on - off_)[:5].max() == 0, "the mat is untouched"


def test_detail_off_is_todays_picture_exactly() -> None:
    """With detail 0 the present pass reads the work-size keyframes as before: the
    picture equals one rendered by a pipeline that never had the detail on."""
    from passersby.player.render.pipeline import Pipeline

    off = offscreen_or_skip((W, H))
    try:
        plain = dataclasses.replace(LOOK, detail=0.0)
        pipe = Pipeline(off.ctx, LOOK, (64, 64))
        pipe.set_keyframes(portrait_keyframe(), portrait_keyframe())
        pipe.render(off.fbo, 1.0, 0.0)
        pipe.set_look(plain)                       # switched off live
        pipe.render(off.fbo, 1.0, 0.0)
        switched = off.read().copy()
        pipe.release()
    finally:
        off.release()
    assert np.array_equal(switched, render(plain, (W, H)).astype(np.uint8))


def test_detail_keys_are_parameters_of_the_look() -> None:
    base = render(LOOK, (W, H))
    for key, value in (("impasto", 0.0), ("canvas", 1.5), ("varnish", 1.0),
                       ("craquelure", 1.0), ("stroke_length", 40.0), ("detail_taps", 6)):
        other = render(dataclasses.replace(LOOK, **{key: value}), (W, H))
        assert np.abs(other - base).mean() > 0.2, key


def test_detail_follows_the_output_size() -> None:
    """A new output size remakes the detail textures (at the portrait's own size)."""
    from passersby.player.render.pipeline import Pipeline, portrait_rect

    off = offscreen_or_skip((W, H))
    try:
        pipe = Pipeline(off.ctx, LOOK, (64, 64))
        pipe.set_keyframes(portrait_keyframe(), portrait_keyframe())
        pipe.render(off.fbo, 1.0, 0.0)
        x, y, w, h = portrait_rect((W, H), LOOK)
        assert pipe._detail_size == (w, h) and pipe.detail_on
        assert pipe.steps == pipe.paint_steps + pipe.detail_bands()
        pipe.release()
    finally:
        off.release()


# -- screens hung on their side --

@pytest.mark.parametrize("rotate", [90, 180, 270])
@pytest.mark.parametrize("detail", [0.0, 0.8])
def test_rotate_turns_the_upright_picture_clockwise(rotate: int, detail: float) -> None:
    look = dataclasses.replace(LOOK, detail=detail)
    upright = render(look, (W, H))
    size = (H, W) if rotate in (90, 270) else (W, H)
    turned = render(look, size, rotate)
    assert turned.shape[:2] == (size[1], size[0])
    # np.rot90 with k = -1 turns an array clockwise
    assert np.array_equal(np.rot90(upright, k=-rotate // 90), turned)


def test_captures_read_the_upright_picture() -> None:
    from passersby.player.display import Readback

    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)    # top row first
    upright = np.ascontiguousarray(np.rot90(img, k=1))              # 6 wide x 4... turned back

    class Fbo:
        def read_into(self, buffer: np.ndarray, viewport: tuple, components: int,
                      alignment: int) -> None:                     # GL: bottom row first
            assert viewport == (0, 0, 6, 4) and components == 3 and alignment == 1
            buffer[...] = img[::-1]

    read = Readback()
    assert np.array_equal(read(Fbo(), (6, 4), 0), img)
    assert np.array_equal(read(Fbo(), (6, 4), 90), upright)
    assert np.array_equal(np.rot90(read(Fbo(), (6, 4), 90), k=-1), img)


# -- two characters --

def test_screens_take_their_own_traversal_and_rotate(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, {
        "traversal": {"feedback": 0.3},
        "screens": [{"monitor": 0, "traversal": {"taste": 0.8, "taste_model": "a.npz"}},
                    {"monitor": 1, "seed_offset": 1, "rotate": 90,
                     "traversal": {"mode": "drift", "correlation_seconds": 9.0,
                                   "drift": {"correlation_seconds": 30.0}}}]}))
    a, b = screens.plans(cfg, None)
    assert a.cfg.traversal.taste == 0.8 and a.cfg.traversal.taste_model == "a.npz"
    assert a.cfg.traversal.feedback == 0.3 == b.cfg.traversal.feedback   # global carries over
    assert b.cfg.traversal.mode == "drift" and b.cfg.traversal.taste_model is None
    assert b.cfg.traversal.correlation_seconds == 9.0
    assert b.cfg.traversal.drift.correlation_seconds == 30.0
    assert b.cfg.traversal.orbit == TraversalConfig().orbit
    assert (a.rotate, b.rotate) == (0, 90)
    one = screens.plans(config.load(write(tmp_path, {"traversal": {"mode": "orbit"}})), None)
    assert one[0].cfg.traversal.mode == "orbit" and one[0].rotate == 0


@pytest.mark.parametrize("data, words", [
    ({"screens": [{"monitor": 0, "rotate": 45}]}, ["screens[0].rotate = 45", "[0, 90, 180, 270]"]),
    ({"screens": [{"monitor": 0, "traversal": {"taste": 2}}]},
     ["screens[0].traversal.taste = 2", "0.0 to 1.0"]),
    ({"screens": [{"monitor": 0, "traversal": {"mode": "spin"}}]},
     ["screens[0].traversal.mode = 'spin'", "feedback"]),
    ({"screens": [{"monitor": 0, "traversal": {"tast": 0.1}}]},
     ["unknown key screens[0].traversal.tast", "taste_model"]),
    ({"screens": [{"monitor": 0, "traversal": "bright"}]},
     ["screens[0].traversal = 'bright'", "mapping"]),
    ({"look": {"detail": 1.5}}, ["look.detail = 1.5", "0.0 to 1.0"]),
    ({"look": {"detail_taps": 40}}, ["look.detail_taps = 40", "0 to 16"]),
])
def test_bad_wall_keys_name_file_key_value_and_fix(tmp_path: Path, data: dict, words: list) -> None:
    assert_config_error(write(tmp_path, data), words)


def test_two_screens_with_two_tastes_lean_apart(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Screen 0 learns a taste for bright pictures, screen 1 for dark ones (the same
    ratings, reversed): each plays its own stream through its own traversal config."""
    from passersby.generator.stream import Stream

    spec = importlib.util.spec_from_file_location("bench_taste", ROOT / "bench" / "taste.py")
    bench_taste = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench_taste)  # type: ignore[union-attr]
    z, ratings, bright = bench_taste.rate(chain, 600)
    taste.train(z, ratings).save(tmp_path / "bright.npz")
    taste.train(z, -ratings).save(tmp_path / "dark.npz")
    cfg = config.load(write(tmp_path, {"stream": {"seed": 7}, "screens": [
        {"monitor": 0, "traversal": {"taste_model": str(tmp_path / "bright.npz"), "taste": 1.0}},
        {"monitor": 1, "seed_offset": 1,
         "traversal": {"taste_model": str(tmp_path / "dark.npz"), "taste": 1.0}}]}))
    means = []
    for plan in screens.plans(cfg, None):
        s = Stream(chain, plan.cfg.traversal, 4.0, plan.cfg.stream.seed)
        means.append(np.mean([s.next_frame().image.mean() for _ in range(200)]))
    assert (means[0] - means[1]) / bright.std() > 1.0, (means, bright.std())


def test_detail_bands_are_painted_over_frames_then_dissolve() -> None:
    """A pushed keyframe: work-size steps, then the detail bands (3 for this 0.72 Mpx
    portrait on a software renderer, 1 on a GPU), one per displayed frame, holding the old picture;
    then the dissolve runs monotonically to the new one."""
    from passersby.player.render.pipeline import Pipeline

    size = (900, 1130)
    off = offscreen_or_skip(size)
    try:
        look = dataclasses.replace(LOOK, morph_curve="linear", impasto=0.0, canvas=0.0,
                                   varnish=0.0, stroke_drag=0.0, vignette=0.0)
        pipe = Pipeline(off.ctx, look, (64, 64))
        pipe.set_keyframes(np.full((64, 64, 3), 40, np.uint8), np.full((64, 64, 3), 200, np.uint8))
        for i in (13, 14, 15):
            pipe.render(off.fbo, i / 15, 0.0)
        old = float(off.read()[size[1] // 2, size[0] // 2, 0])
        pipe.push_keyframe(np.full((64, 64, 3), 90, np.uint8))
        n = pipe.steps
        import math

        from passersby.player.render.detail import BAND_PX
        from passersby.player.render.pipeline import portrait_rect

        _, _, w, h = portrait_rect(size, look)
        assert n == pipe.paint_steps + (math.ceil(w * h / BAND_PX) if pipe.software else 1) >= 5
        seen = []
        for i in range(15):
            pipe.render(off.fbo, i / 15, 0.0)
            seen.append((pipe.painting, float(off.read()[size[1] // 2, size[0] // 2, 0])))
        painting = [p for p, _ in seen]
        assert painting[:n] == [True] * (n - 1) + [False], painting
        assert all(abs(v - old) <= 1 for _, v in seen[:n]), (old, seen)
        values = [v for _, v in seen]
        assert all(b <= a + 1 for a, b in zip(values, values[1:]))
        pipe.render(off.fbo, 1.0, 0.0)
        assert float(off.read()[size[1] // 2, size[0] // 2, 0]) < old - 60    # the new, darker one
        pipe.release()
    finally:
        off.release()
