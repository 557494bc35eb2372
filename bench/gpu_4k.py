"""The 4K wall on a GPU, end to end: 2 screens x 3840x2160 at 60 Hz.

    .venv/bin/python bench/gpu_4k.py [--seconds 20] [--size 3840x2160] [--screens 2]
        [--kps 4] [--json]

Needs CUDA (torch) and a GPU OpenGL driver behind EGL; without CUDA it says so and
exits 0. Per screen, as the player runs it: the default world's chain (generator,
encoder, refiner) on CUDA makes keyframes at `kps` per screen (Stream.next_frame,
the real walk), each is uploaded (PBO) and painted once (work-size passes, then
the detail pass at the portrait's own size); every displayed frame presents both
screens into 4K offscreen framebuffers with ctx.finish(). Prints the chain's
keyframes/s, the GL frame time p50/p99, the share of frames inside the 60 Hz budget
(16.7 ms for both screens together) and the renderer, so the figures say which
GPU made them.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main() -> int:
    ap = common.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="3840x2160")
    ap.add_argument("--screens", type=int, default=2)
    ap.add_argument("--kps", type=float, default=4.0)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_4k.py needs CUDA (torch.cuda.is_available() is False here); "
              "run it on the GPU unit. Nothing measured.")
        return 0
    from passersby.common import config
    from passersby.generator.chain import Chain
    from passersby.generator.stream import Stream
    from passersby.player.display import Offscreen
    from passersby.player.render.pipeline import Pipeline

    cfg = config.load(None)
    size = common.size_list(args.size)[0]
    chain = Chain.from_config(cfg.weights, "cuda")
    streams = [Stream(chain, cfg.traversal, args.kps, seed=1000 + k) for k in range(args.screens)]
    first = [s.next_frame().image for s in streams]
    off = Offscreen(size)                       # one context; one target per screen
    ctx = off.ctx
    targets = [off.fbo] + [ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)])
                           for _ in range(args.screens - 1)]
    pipes = [Pipeline(ctx, cfg.look, (f.shape[1], f.shape[0])) for f in first]
    for p, f in zip(pipes, first):
        p.set_keyframes(f, f)
    per_kf = max(1, round(60.0 / args.kps))
    frames, chain_s, kf = [], 0.0, 0
    t_end = time.perf_counter() + args.seconds
    i = 0
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        if i % per_kf == 0:
            c0 = time.perf_counter()
            images = [s.next_frame().image for s in streams]    # chain on CUDA, to host
            torch.cuda.synchronize()
            chain_s += time.perf_counter() - c0
            kf += len(images)
            for p, img in zip(pipes, images):
                p.push_keyframe(img)
        for p, tgt in zip(pipes, targets):
            p.render(tgt, (i % per_kf) / per_kf, i / 60.0)
        ctx.finish()
        frames.append(time.perf_counter() - t0)
        i += 1
    ms = 1e3 * np.asarray(frames)
    row = {"size": args.size, "screens": args.screens,
           "frame_p50_ms": float(np.median(ms)), "frame_p99_ms": common.pct(ms, 99),
           "within_60hz": float(np.mean(ms <= 1000 / 60)),
           "chain_keyframes_per_s": kf / max(chain_s, 1e-9),
           "renderer": str(ctx.info.get("GL_RENDERER", "?")),
           "cuda": torch.cuda.get_device_name(0)}
    common.emit("gpu_4k", [row], args.json,
                {"note": "frame time includes the chain's keyframe steps (same thread)"})
    for p in pipes:
        p.release()
    off.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
