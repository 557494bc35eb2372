"""Offscreen render speed: pipeline alone, + read-back, and the whole `render` to MP4.

    .venv/bin/python bench/render_fps.py [--sizes 512x512,1280x720] [--frames 60] [--json]

Prints frames per second for each output size:
- pipeline: Pipeline.render + ctx.finish (the GL work of one displayed frame), with
  a keyframe pushed every 30/4 frames as `render` does at its default 30 fps, so the
  per-keyframe painting is included;
- readback: the same plus reading the frame into memory (what `render` needs);
- render_mp4: `passersby render` end to end (generator in its thread, morph, GL,
  read-back, H.264 encode), from the first frame to the file closed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from passersby.common import config  # noqa: E402


def gl_fps(size: tuple[int, int], frames: int) -> tuple[float, float]:
    from passersby.player.display import Offscreen
    from passersby.player.render.pipeline import Pipeline

    off = Offscreen(size)
    pipe = Pipeline(off.ctx, config.LookConfig(), (64, 64))
    r = np.random.default_rng(0)
    keys = r.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    pipe.set_keyframes(keys[0], keys[1])

    def frame(i: int) -> None:
        if i % 8 == 0:                         # ~4 keyframes/s at 30 fps
            pipe.push_keyframe(keys[(i // 8) % 4])
        pipe.render(off.fbo, (i % 8) / 8, i / 30)
    for i in range(5):
        pipe.render(off.fbo, 0.5, i / 30)
    off.ctx.finish()
    t0 = time.perf_counter()
    for i in range(frames):
        frame(i)
    off.ctx.finish()
    t1 = time.perf_counter()
    for i in range(frames):
        frame(i)
        off.read()
    t2 = time.perf_counter()
    pipe.release()
    off.release()
    return frames / (t1 - t0), frames / (t2 - t1)


def render_fps(size: tuple[int, int], frames: int) -> float:
    from passersby.player import session as player

    cfg = config.load(None, {"render": {"size": list(size), "fps": 30.0,
                                        "seconds": frames / 30.0},
                             "stream": {"seed": 1}})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        player.render_offscreen(cfg, Path(tmp) / "b.mp4", None)
        return frames / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512x512,1280x720")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for text in args.sizes.split(","):
        w, h = (int(v) for v in text.split("x"))
        p, rb = gl_fps((w, h), args.frames)
        rows.append({"size": text, "pipeline_fps": round(p, 1), "readback_fps": round(rb, 1),
                     "render_mp4_fps": round(render_fps((w, h), args.frames), 1)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'size':>10} {'pipeline fps':>13} {'+readback fps':>14} {'render mp4 fps':>15}")
    for r in rows:
        print(f"{r['size']:>10} {r['pipeline_fps']:>13} {r['readback_fps']:>14} "
              f"{r['render_mp4_fps']:>15}")


if __name__ == "__main__":
    main()
