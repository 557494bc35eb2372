"""Soak: RSS and GL object counts of the live render loop over a long offscreen run.

    nice -n 10 .venv/bin/python bench/soak.py --minutes 30 [--size 640x360] [--fps 30]
        [--sample-s 30] [--json]

Runs the player's pieces (player.open_session live, Morph, Pipeline, Offscreen)
at --fps (frames are paced, not flat out: the machine is shared), reading every
frame back like `render` does. Every --sample-s seconds it records the process
RSS, the live moderngl objects (textures, framebuffers, buffers, vertex arrays,
programs, found by the garbage collector), Python objects, threads and the
keyframes shown. Reports the least-squares slope per hour of each after the first
10% of the run (warm-up: allocator pools, first keyframes); ~0 means no leak.
"""
from __future__ import annotations

import gc
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common


def gl_objects() -> int:
    import moderngl

    kinds = (moderngl.Texture, moderngl.Framebuffer, moderngl.Buffer, moderngl.VertexArray,
             moderngl.Program, moderngl.Renderbuffer)
    return sum(type(o) in kinds for o in gc.get_objects())


def run(minutes: float, size: tuple[int, int], fps: float, sample_s: float) -> list[dict[str, Any]]:
    from passersby.common import config
    from passersby.player import session as player
    from passersby.player.display import Offscreen
    from passersby.player.morph import Morph
    from passersby.player.render.pipeline import Pipeline

    cfg = config.load(None, {"stream": {"seed": 7}})
    with tempfile.TemporaryDirectory() as tmp:
        session = player.open_session(cfg, Path(tmp), live=True)
        off = Offscreen(size)
        pipe = Pipeline(off.ctx, cfg.look, (session.size,) * 2)
        try:
            prev, nxt = player.next_keyframe(session), player.next_keyframe(session)
            pipe.set_keyframes(prev.image, nxt.image)
            morph: Any = Morph(1.0 / cfg.stream.keyframes_per_second)
            samples: list[dict[str, Any]] = []
            start = last = next_sample = time.perf_counter()
            frames, shown = 0, nxt.step
            while (now := time.perf_counter()) - start < minutes * 60.0:
                for frame in morph.advance(now - last, session.queue.get_nowait):
                    pipe.push_keyframe(frame.image)
                    shown = frame.step
                last = now
                pipe.render(off.fbo, morph.t, now - start)
                off.read()
                frames += 1
                if now >= next_sample:
                    samples.append(_sample(now - start, frames, shown, morph.held))
                    next_sample += sample_s
                time.sleep(max(0.0, start + frames / fps - time.perf_counter()))
            samples.append(_sample(time.perf_counter() - start, frames, shown, morph.held))
        finally:
            session.producer.stop()
            pipe.release()
            off.release()
    return samples


def _sample(t: float, frames: int, step: int, held: float) -> dict[str, Any]:
    gc.collect()
    return {"t_s": round(t, 1), "rss_mb": round(common.rss_mb(), 1), "gl_objects": gl_objects(),
            "py_objects": len(gc.get_objects()), "threads": threading.active_count(),
            "frames": frames, "step": step, "held_s": round(held, 2)}


def slopes(samples: list[dict[str, Any]]) -> dict[str, float]:
    cut = samples[max(1, len(samples) // 10):] if len(samples) > 3 else samples
    ts = [s["t_s"] for s in cut]
    return {f"{k}_per_hour": common.slope_per_hour(ts, [s[k] for s in cut])
            for k in ("rss_mb", "gl_objects", "py_objects", "threads")}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--every", type=int, default=0, help="print every Nth sample (0: ~12 rows)")
    args = ap.parse_args()
    samples = run(args.minutes, common.size_list(args.size)[0], args.fps, args.sample_s)
    every = args.every or max(1, len(samples) // 12)
    rows = samples if args.json else samples[::every] + ([samples[-1]] if
                                                           (len(samples) - 1) % every else [])
    last = samples[-1]
    extra = {**slopes(samples), "fps": last["frames"] / max(last["t_s"], 1e-9),
             "keyframes": last["step"], "held_s": last["held_s"]}
    common.emit("soak", rows, args.json, extra)


if __name__ == "__main__":
    main()
