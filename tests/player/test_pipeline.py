"""Pixel read-back tests of the render pipeline on small framebuffers (EGL, headless)."""
from __future__ import annotations

import dataclasses
import gc
import shutil
from pathlib import Path

import moderngl
import numpy as np
import pytest

from passersby.common.config import LookConfig
from passersby.player.render.pipeline import Pipeline, portrait_rect
from passersby.player.render.shaders import DEFAULT_SHADER_DIR

SRC = (64, 64)
OUT = (96, 96)
RED = (200, 40, 40)
BLUE = (30, 60, 220)
# Every look effect off, so each test can switch on exactly one.
PLAIN = dataclasses.replace(
    LookConfig(), work_size=64, morph_curve="linear", painterly=0.0, sharpen=0.0,
    exposure=0.0, contrast=1.0, saturation=1.0, warmth=0.0, gamma=1.0, vignette=0.0,
    grain=0.0, aspect=1.0, portrait_height=1.0, frame_width=0.0, detail=0.0)


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = SRC) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (size[1], size[0], 3)).copy()


@pytest.fixture(scope="module")
def off():  # type: ignore[no-untyped-def]
    from passersby.player.display import DisplayError, Offscreen

    try:
        target = Offscreen(OUT)
    except DisplayError as e:
        pytest.skip(f"no headless GL here: {e}")
    yield target
    target.release()


@pytest.fixture()
def pipe(off) -> Pipeline:  # type: ignore[no-untyped-def]
    p = Pipeline(off.ctx, PLAIN, SRC)
    p.set_keyframes(solid(RED), solid(BLUE))
    yield p
    p.release()


def draw(off, pipe: Pipeline, t: float = 0.0, time_s: float = 0.0, **look) -> np.ndarray:  # type: ignore[no-untyped-def]
    if look:
        pipe.set_look(dataclasses.replace(PLAIN, **look))
    pipe.render(off.fbo, t, time_s)
    return off.read().astype(np.int16)


def test_t0_is_prev_and_t1_is_next(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    assert np.abs(draw(off, pipe, 0.0) - RED).max() <= 1
    assert np.abs(draw(off, pipe, 1.0) - BLUE).max() <= 1


def test_halfway_is_between(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    mid = draw(off, pipe, 0.5)
    assert np.abs(mid - (np.add(RED, BLUE) / 2)).max() <= 2


def test_smooth_curve_eases(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    k = 0.25 * 0.25 * (3 - 2 * 0.25)                       # smoothstep(0.25)
    img = draw(off, pipe, 0.25, morph_curve="smooth")
    expect = np.array(RED) + k * (np.array(BLUE) - RED)
    assert np.abs(img - expect).max() <= 2


def test_push_keyframe_shifts_next_to_prev(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    green = (20, 210, 60)
    pipe.push_keyframe(solid(green))
    assert np.abs(draw(off, pipe, 0.0) - BLUE).max() <= 1
    assert np.abs(draw(off, pipe, 1.0) - green).max() <= 1


def test_wrong_keyframe_shape_names_it(pipe: Pipeline) -> None:
    with pytest.raises(ValueError, match=r"shape \(64, 64, 3\).*got uint8 \(32, 32, 3\)"):
        pipe.push_keyframe(solid(RED, (32, 32)))
    with pytest.raises(ValueError, match="got float32"):
        pipe.set_keyframes(solid(RED).astype(np.float32), solid(BLUE))


def test_orientation_top_row_is_top(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    frame = solid(BLUE)
    frame[:32, :32] = RED                                  # top-left red
    frame[:32, 32:] = (20, 210, 60)                        # top-right green
    pipe.set_keyframes(frame, frame)
    img = draw(off, pipe, 0.0)
    assert np.abs(img[5, 5] - RED).max() <= 1
    assert np.abs(img[5, 90] - (20, 210, 60)).max() <= 1
    assert np.abs(img[90, 48] - BLUE).max() <= 1


def test_bicubic_upsample_keeps_a_ramp_linear(off) -> None:  # type: ignore[no-untyped-def]
    ramp = np.zeros((16, 16, 3), np.uint8)
    ramp[..., :] = (np.arange(16) * 16)[None, :, None]
    p = Pipeline(off.ctx, PLAIN, (16, 16))
    p.set_keyframes(ramp, ramp)
    p.render(off.fbo, 0.0, 0.0)
    row = off.read()[48, 20:76, 0].astype(float)           # interior, away from clamped edges
    steps = np.diff(row)
    assert steps.min() > 0 and steps.max() - steps.min() <= 2.0
    p.release()


def test_mat_shows_around_a_smaller_portrait(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    mat = (0.10, 0.20, 0.30)
    img = draw(off, pipe, 0.0, portrait_height=0.5, mat_color=mat)
    mat255 = np.round(np.array(mat) * 255)
    for y, x in ((0, 0), (0, 95), (95, 0), (95, 95), (48, 2), (2, 48)):
        assert np.abs(img[y, x] - mat255).max() <= 1, (y, x)
    assert np.abs(img[48, 48] - RED).max() <= 1


def test_frame_line_surrounds_the_portrait(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    frame = (0.9, 0.8, 0.1)
    img = draw(off, pipe, 0.0, portrait_height=0.5, frame_width=0.05, frame_color=frame)
    x0, y0, w, h = portrait_rect(OUT, dataclasses.replace(PLAIN, portrait_height=0.5))
    assert (x0, y0, w, h) == (24, 24, 48, 48)
    f255 = np.round(np.array(frame) * 255)
    assert np.abs(img[48, x0 - 2] - f255).max() <= 1       # left of the portrait
    assert np.abs(img[y0 - 2, 48] - f255).max() <= 1       # above it (top row first)
    assert np.abs(img[48, x0 + 2] - RED).max() <= 1        # inside stays the picture
    assert np.abs(img[48, 5] - np.round(np.array(PLAIN.mat_color) * 255)).max() <= 1


def test_aspect_crops_the_square(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    frame = solid(RED)
    frame[:, :16] = BLUE                                   # left quarter blue
    pipe.set_keyframes(frame, frame)
    img = draw(off, pipe, 0.0, aspect=0.5)                 # keeps the middle half
    x0, _, w, _ = portrait_rect(OUT, dataclasses.replace(PLAIN, aspect=0.5))
    assert w == 48
    assert np.abs(img[48, x0 + 1] - RED).max() <= 2        # blue quarter cropped away
    assert np.abs(img[48, x0 - 2] - np.round(np.array(PLAIN.mat_color) * 255)).max() <= 1


def test_vignette_darkens_corners(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    pipe.set_keyframes(solid((180, 180, 180)), solid((180, 180, 180)))
    img = draw(off, pipe, 0.0, vignette=1.0)
    centre, corner = img[46:50, 46:50].mean(), img[:3, :3].mean()
    assert centre >= 178 and corner < centre - 30


def test_grain_changes_with_time(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    pipe.set_keyframes(solid((128, 128, 128)), solid((128, 128, 128)))
    a = draw(off, pipe, 0.0, time_s=0.0, grain=0.1)
    a2 = draw(off, pipe, 0.0, time_s=0.0)
    b = draw(off, pipe, 0.0, time_s=1.0)
    assert np.array_equal(a, a2)                           # a pure function of time
    assert np.abs(a - b).mean() > 2                        # and it moves
    assert a.std() > 3 and abs(a.mean() - 128) < 2         # zero-mean noise


def test_grain_stays_alive_after_years(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    year = 3 * 365 * 86400.0
    a = draw(off, pipe, 0.0, time_s=year, grain=0.1)
    b = draw(off, pipe, 0.0, time_s=year + 1 / 30)
    assert np.abs(a - b).mean() > 2


def test_saturation_zero_is_grey(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    img = draw(off, pipe, 0.0, saturation=0.0)
    assert np.abs(img[..., 0] - img[..., 1]).max() <= 1
    assert np.abs(img[..., 1] - img[..., 2]).max() <= 1


def test_exposure_and_warmth_move_the_right_way(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    grey = solid((120, 120, 120))
    pipe.set_keyframes(grey, grey)
    base = draw(off, pipe)[48, 48]
    assert (draw(off, pipe, exposure=1.0)[48, 48] > base + 20).all()
    warm = draw(off, pipe, warmth=0.5)[48, 48]
    assert warm[0] > base[0] + 5 and warm[2] < base[2] - 5


def test_full_default_look_renders(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    pipe.set_keyframes(rng.integers(0, 255, (64, 64, 3), np.uint8), solid(BLUE))
    pipe.set_look(LookConfig())                            # work_size 256: work FBOs remade
    pipe.render(off.fbo, 0.3, 1.0)
    img = off.read()
    assert img.std() > 5 and img.max() > 0


def test_no_gl_objects_made_per_frame(off, pipe: Pipeline) -> None:  # type: ignore[no-untyped-def]
    pipe.set_look(dataclasses.replace(LookConfig(), work_size=64))
    pipe.render(off.fbo, 0.1, 0.0)

    def count() -> int:
        gc.collect()
        kinds = (moderngl.Texture, moderngl.Framebuffer, moderngl.VertexArray, moderngl.Buffer)
        return sum(isinstance(o, kinds) for o in gc.get_objects())

    before = count()
    for i in range(10):
        pipe.push_keyframe(solid((i * 20, 0, 0)))
        pipe.render(off.fbo, i / 10, i / 30)
    assert count() == before


def test_reload_keeps_rendering_after_a_broken_edit(off, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shader_dir = tmp_path / "shaders"
    shutil.copytree(DEFAULT_SHADER_DIR, shader_dir)
    p = Pipeline(off.ctx, PLAIN, SRC, shader_dir=shader_dir)
    p.set_keyframes(solid(RED), solid(BLUE))
    present = shader_dir / "present.frag"
    good = present.read_text()
    present.write_text(good.replace("vec3 c = mat_color;", "vec3 c = mat_colour;"))
    errors = p.reload_shaders()
    assert len(errors) == 1 and "present.frag:" in errors[0]
    p.render(off.fbo, 0.0, 0.0)
    assert np.abs(off.read().astype(int) - RED).max() <= 1       # last good program draws
    present.write_text(good.replace("vec3 c = mat_color;", "vec3 c = vec3(0.0, 1.0, 0.0);"))
    assert p.reload_shaders() == []
    p.set_look(dataclasses.replace(PLAIN, portrait_height=0.5))
    p.render(off.fbo, 0.0, 0.0)
    assert tuple(off.read()[0, 0]) == (0, 255, 0)                  # the new program draws
    p.release()
