"""The GPU path, tested on the CPU where it can be: PBO keyframe uploads, the prepared
(BatchNorm-folded, channels_last) networks, float16 quality, the batched path.
Tests that need a CUDA device skip with the reason; none is timed."""
from __future__ import annotations

import copy
import gc
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import offscreen_or_skip
from passersby.common import rng
from passersby.generator import weights
from passersby.generator.chain import Chain, prepare, to_uint8

NO_CUDA = "no CUDA device here: the GPU path (fp16 generator on CUDA) is unmeasured on this machine"


@pytest.fixture(scope="module")
def gl():  # type: ignore[no-untyped-def]
    off = offscreen_or_skip((32, 32))
    yield off
    off.release()


def latents(n: int, seed: int = 5) -> np.ndarray:
    return np.stack([rng.normal(seed, k, 100) for k in range(n)])


def test_pbo_upload_round_trips(gl) -> None:  # type: ignore[no-untyped-def]
    from passersby.player.render.upload import PboUploader

    tex = gl.ctx.texture((16, 8), 3, alignment=1)
    up = PboUploader(gl.ctx, 16 * 8 * 3)
    for seed in range(3):                                  # round robin over the PBOs
        data = np.random.default_rng(seed).integers(0, 255, (8, 16, 3), dtype=np.uint8)
        up.write(tex, data)
        got = np.frombuffer(tex.read(alignment=1), np.uint8).reshape(8, 16, 3)
        assert np.array_equal(got, data)
    assert up.uploads == 3
    with pytest.raises(ValueError, match="keyframe of 12 bytes.*moves 384"):
        up.write(tex, np.zeros(12, np.uint8))
    up.release()
    tex.release()


def test_pbo_uploads_make_no_gl_objects(gl) -> None:  # type: ignore[no-untyped-def]
    import moderngl

    from passersby.player.render.upload import PboUploader

    tex = gl.ctx.texture((8, 8), 3, alignment=1)
    up = PboUploader(gl.ctx, 8 * 8 * 3)

    def count() -> int:
        gc.collect()
        return sum(type(o) in (moderngl.Buffer, moderngl.Texture) for o in gc.get_objects())

    before = count()
    for i in range(20):
        up.write(tex, np.full((8, 8, 3), i, np.uint8))
    assert count() == before
    up.release()
    tex.release()


def test_folded_batchnorm_matches_the_package(weights_root: Path) -> None:
    g, _ = weights.load_module(weights_root, "dcgan64-standin", "generator")
    fast = prepare(copy.deepcopy(g), torch.device("cpu"), channels_last=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    z = torch.from_numpy(latents(4))
    with torch.inference_mode():
        assert torch.allclose(fast(z), g(z), atol=2e-5)


def test_generate_batch_matches_generate(chain) -> None:  # type: ignore[no-untyped-def]
    z = latents(5, seed=9)
    batched = chain.generate_batch(z, batch=2)
    assert batched.shape == (5, 64, 64, 3) and batched.dtype == np.uint8
    one = np.concatenate([to_uint8(chain.generate(z[i:i + 1])) for i in range(5)])
    assert np.abs(batched.astype(int) - one).max() <= 1     # batch size may change rounding


def fp16_error(chain32: Chain, chain16: Chain) -> tuple[float, int]:
    z = latents(16, seed=3)
    a = chain32.generate(z).cpu()
    b = chain16.generate(z).cpu()
    assert b.dtype == torch.float32                          # callers always get float32
    return float((a - b).abs().mean()), int(np.abs(to_uint8(a).astype(int) - to_uint8(b)).max())


def test_float16_generator_holds_quality(weights_root: Path, chain) -> None:  # type: ignore[no-untyped-def]
    """The numerics of the CUDA path's float16, checked with CPU float16 kernels."""
    half = Chain.load(weights_root, "dcgan64-standin", None, "cpu", half=True)
    mean_err, max_u8 = fp16_error(chain, half)
    assert mean_err < 2e-3 and max_u8 <= 8, (mean_err, max_u8)


def test_cpu_stays_float32_by_default(chain) -> None:  # type: ignore[no-untyped-def]
    assert not chain.half and next(chain.generator.parameters()).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_chain_runs_float16_on_the_gpu(weights_root: Path, chain) -> None:  # type: ignore[no-untyped-def]
    gpu = Chain.load(weights_root, "dcgan64-standin", "dcgan64-standin-encoder", "cuda")
    assert gpu.half and gpu.device.type == "cuda"
    mean_err, max_u8 = fp16_error(chain, gpu)
    assert mean_err < 2e-3 and max_u8 <= 8, (mean_err, max_u8)
    assert gpu.encode(gpu.generate(latents(2))).shape == (2, 100)


def test_upload_module_is_gl_side_and_inert() -> None:
    import subprocess
    import sys

    code = "import sys, passersby.player.render.upload; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "torch" not in out.stdout.split()


# -- the render path: work-size passes once per keyframe, spread over frames --

def _plain_pipe(off, paint_steps: int = 4):  # type: ignore[no-untyped-def]
    import dataclasses

    from passersby.common.config import LookConfig
    from passersby.player.render.pipeline import Pipeline

    look = dataclasses.replace(LookConfig(), work_size=64, morph_curve="linear", sharpen=0.0,
                               grain=0.0, vignette=0.0, aspect=1.0, portrait_height=1.0,
                               frame_width=0.0, contrast=1.0, saturation=1.0, warmth=0.0,
                               detail=0.0)   # the work-size schedule (test_wall.py: detail)
    return Pipeline(off.ctx, look, (64, 64), paint_steps=paint_steps)


def _solid(v: int) -> np.ndarray:
    return np.full((64, 64, 3), v, np.uint8)


def test_a_pushed_keyframe_is_painted_over_frames_then_dissolves(gl) -> None:  # type: ignore[no-untyped-def]
    pipe = _plain_pipe(gl)
    pipe.set_keyframes(_solid(40), _solid(200))
    for i in range(13, 15):                   # the display's pace: t moves 1/15 a frame
        pipe.render(gl.fbo, i / 15, 0.0)
    pipe.push_keyframe(_solid(90))
    seen = []
    for i in range(15):                       # 60 fps display, 4 keyframes/s
        pipe.render(gl.fbo, i / 15, 0.0)
        seen.append((pipe.painting, float(gl.read()[16, 16, 0])))
    assert [p for p, _ in seen[:4]] == [True, True, True, False]
    assert all(abs(v - 200) <= 2 for _, v in seen[:4])          # holds the old next meanwhile
    values = [v for _, v in seen]
    assert all(b <= a + 1 for a, b in zip(values, values[1:]))  # then moves monotonically
    pipe.render(gl.fbo, 1.0, 0.0)
    assert abs(float(gl.read()[16, 16, 0]) - 90) <= 2
    pipe.release()


def test_few_frames_per_keyframe_paint_at_once(gl) -> None:  # type: ignore[no-untyped-def]
    pipe = _plain_pipe(gl)
    pipe.set_keyframes(_solid(40), _solid(200))
    pipe.render(gl.fbo, 1 / 3, 0.0)
    pipe.render(gl.fbo, 2 / 3, 0.0)
    pipe.push_keyframe(_solid(90))
    pipe.render(gl.fbo, 0.0, 0.0)              # 12 fps, 4 keyframes/s: no frame to spare
    assert not pipe.painting
    pipe.render(gl.fbo, 0.5, 0.0)
    assert abs(float(gl.read()[16, 16, 0]) - 145) <= 2
    pipe.release()


@pytest.mark.parametrize("size", [(96, 96), (32, 32)])
def test_dissolve_at_any_output_size(size: tuple[int, int]) -> None:
    from passersby.player.display import DisplayError, Offscreen

    try:
        off = Offscreen(size)
    except DisplayError as e:
        pytest.skip(f"no headless GL here: {e}")
    pipe = _plain_pipe(off)
    pipe.set_keyframes(_solid(40), _solid(200))
    pipe.render(off.fbo, 0.25, 0.0)
    assert np.abs(off.read().astype(int) - 80).max() <= 2
    pipe.release()
    off.release()


def test_flat_mat_by_clear_draws_the_same_pixels() -> None:
    from passersby.common.config import LookConfig
    from passersby.player.display import DisplayError, Offscreen
    from passersby.player.render.pipeline import Pipeline

    try:
        off = Offscreen((160, 120))
    except DisplayError as e:
        pytest.skip(f"no headless GL here: {e}")
    keys = np.random.default_rng(1).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    images = []
    for flat in (True, False):
        pipe = Pipeline(off.ctx, LookConfig(), (64, 64), flat_mat=flat)
        pipe.set_keyframes(*keys)
        pipe.render(off.fbo, 0.3, 2.0)
        images.append(off.read().copy())
        pipe.release()
    assert np.array_equal(images[0], images[1])
    off.release()
