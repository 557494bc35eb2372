"""Scaling: how cost grows with output pixels, screens and model resolution.

    .venv/bin/python bench/scaling.py [--frames 45] [--json]

- pixels: mean GL time per displayed frame of the default look (60 fps display,
  4 keyframes/s: keyframe painting amortised) at 640x360 .. 3840x2160;
- screens: the same at 1280x720 for 1 and 2 screens (one EGL context + Pipeline
  each, rendered one after the other as a two-window player would);
- model: generator keyframes/s at batch 1 (torch threads as live: cores // 2) of
  DCGAN generators for 64, 128 and 256 px (64: the default weights; 128/256: the
  same architecture with one/two more up-sampling blocks, random weights: only
  the cost matters), and the GL cost of taking such keyframes (upload + paint).
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import common

PER_KF = 15                      # 60 fps display, 4 keyframes/s


def look_ms(pipes: list[tuple[Any, Any]], frames: int, src: int = 64) -> float:
    """Mean ms per displayed frame (all screens) of the default look, GL work included."""
    keys = np.random.default_rng(0).integers(0, 255, (4, src, src, 3), dtype=np.uint8)
    for pipe, _ in pipes:
        pipe.set_keyframes(keys[0], keys[1])
    t0 = time.perf_counter()
    for i in range(frames):
        for pipe, off in pipes:
            if i % PER_KF == 0:
                pipe.push_keyframe(keys[(i // PER_KF) % 4])
            pipe.render(off.fbo, (i % PER_KF) / PER_KF, i / 60)
            off.ctx.finish()
    return 1e3 * (time.perf_counter() - t0) / frames


def make(size: tuple[int, int], src: int = 64) -> tuple[Any, Any]:
    from passersby.common.config import LookConfig
    from passersby.player.display import Offscreen
    from passersby.player.render.pipeline import Pipeline

    off = Offscreen(size)
    return Pipeline(off.ctx, LookConfig(), (src, src)), off


def free(pairs: list[tuple[Any, Any]]) -> None:
    for pipe, off in pairs:
        pipe.release()
        off.release()


def gl_rows(frames: int) -> list[dict[str, Any]]:
    rows = []
    for w, h in ((640, 360), (1280, 720), (1920, 1080), (3840, 2160)):
        pairs = [make((w, h))]
        ms = look_ms(pairs, frames)
        free(pairs)
        rows.append({"axis": "pixels", "case": f"{w}x{h}", "ms_per_frame": ms,
                     "per_unit": ms / (w * h / 1e6), "unit": "ms/Mpx"})
    for n in (1, 2):
        pairs = [make((1280, 720)) for _ in range(n)]
        ms = look_ms(pairs, frames)
        free(pairs)
        rows.append({"axis": "screens", "case": f"{n} x 1280x720", "ms_per_frame": ms,
                     "per_unit": ms / n, "unit": "ms/screen"})
    for src in (64, 128, 256):
        pairs = [make((1280, 720), src)]
        ms = look_ms(pairs, frames, src)
        free(pairs)
        rows.append({"axis": "model GL", "case": f"{src}px keyframes", "ms_per_frame": ms,
                     "per_unit": ms, "unit": "ms/frame 720p"})
    return rows


def generator(torch: Any, size: int) -> Any:
    from passersby.generator.models.dcgan import Generator

    g = Generator()
    blocks = []
    for _ in range({64: 0, 128: 1, 256: 2}[size]):       # insert 2x up blocks before the last
        blocks += [torch.nn.ConvTranspose2d(64, 64, 4, 2, 1, bias=False),
                   torch.nn.BatchNorm2d(64), torch.nn.ReLU(True)]
    layers = list(g.main)
    g.main = torch.nn.Sequential(*layers[:-2], *blocks, *layers[-2:])
    return g.eval()


def model_rows(reps: int) -> list[dict[str, Any]]:
    import torch

    from passersby.generator.chain import prepare

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    rows = []
    for size in (64, 128, 256):
        g = prepare(generator(torch, size), torch.device("cpu"))
        z = torch.randn(1, 100)
        with torch.inference_mode():
            assert g(z).shape[-1] == size
            g(z)
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                g(z)
                ts.append(time.perf_counter() - t0)
        rate = 1.0 / float(np.median(ts))
        rows.append({"axis": "model G", "case": f"{size}px generator", "ms_per_frame": 1e3 / rate,
                     "per_unit": rate, "unit": "keyframes/s"})
    return rows


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--frames", type=int, default=45)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    rows = gl_rows(args.frames) + model_rows(args.reps)
    common.emit("scaling", rows, args.json)


if __name__ == "__main__":
    main()
