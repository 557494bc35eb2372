"""Frame pacing: render-loop frame times with the generator running vs not.

    .venv/bin/python bench/pacing.py [--size 640x360] [--fps 60] [--seconds 20] [--json]

The loop is the player's, built from its public pieces (player.open_session,
Morph, Pipeline, Offscreen): advance the morph, push arrived keyframes, render,
ctx.finish() (the GL work done, as a swap would wait for it), then sleep to the
next 1/fps deadline like vsync. The frame time is the work from the top of the
loop to finish (the sleep excluded).
- unloaded: keyframes come from a list made beforehand, at the same rate, and no
  generator runs;
- loaded: player.open_session(live=True) runs the generator in its thread.
A "wait" is a frame whose morph reached its keyframe with none available (the
renderer held the picture: Morph.held grew). Target: 0 waits, loaded p99 <= 1.25x
unloaded p99. Phases alternate (unloaded, loaded, unloaded, loaded ...) and the
ratio is of the pooled figures. --nice-producer N lowers the generator thread's
priority by N (Linux per-thread nice), the mitigation this bench measures.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import common


def loop(pipe: Any, off: Any, take: Callable[[], Any], kps: float, fps: float,
         seconds: float) -> dict[str, Any]:
    from passersby.player.morph import Morph

    morph: Any = Morph(1.0 / kps)
    times, waits, late = [], 0, 0
    start = last = time.perf_counter()
    i = 0
    while (top := time.perf_counter()) - start < seconds:
        held = morph.held
        for frame in morph.advance(top - last, take):
            pipe.push_keyframe(frame.image)
        last = top
        pipe.render(off.fbo, morph.t, top - start)
        off.ctx.finish()
        dt = time.perf_counter() - top
        times.append(dt)
        waits += morph.held > held
        late += dt > 1.0 / fps
        i += 1
        time.sleep(max(0.0, start + i / fps - time.perf_counter()))
    return {"times": times, "waits": waits, "late": late}


def nice_producer(n: int) -> None:
    """Lower the producer thread's scheduling priority by n (Linux: threads have own nice)."""
    for t in threading.enumerate():
        if t.name == "passersby-producer" and t.native_id is not None and n:
            os.setpriority(os.PRIO_PROCESS, t.native_id, n)


def run(size: tuple[int, int], fps: float, seconds: float, rounds: int,
        nice: int = 0) -> dict[str, dict]:
    from passersby.common import config
    from passersby.common.frames import Frame
    from passersby.player import session as player
    from passersby.player.display import Offscreen
    from passersby.player.render.pipeline import Pipeline

    cfg = config.load(None, {"stream": {"seed": 3}})
    kps = cfg.stream.keyframes_per_second
    off = Offscreen(size)
    pipe = Pipeline(off.ctx, cfg.look, (64, 64))
    rng = np.random.default_rng(0)
    stock = [Frame(k, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), np.zeros(100, np.float32))
             for k in range(8)]
    pipe.set_keyframes(stock[0].image, stock[1].image)
    out: dict[str, dict] = {"unloaded": {"times": [], "waits": 0, "late": 0},
                            "loaded": {"times": [], "waits": 0, "late": 0}}
    per = seconds / rounds
    import tempfile
    for _ in range(rounds):
        made = [0]

        def from_stock() -> Frame:             # the same rate as the generator's
            made[0] += 1
            return stock[made[0] % len(stock)]
        _merge(out["unloaded"], loop(pipe, off, from_stock, kps, fps, per))
        with tempfile.TemporaryDirectory() as tmp:
            session = player.open_session(cfg, Path(tmp), live=True)
            nice_producer(nice)
            try:
                for _ in range(2):
                    frame = player.next_keyframe(session)
                    pipe.push_keyframe(frame.image)
                _merge(out["loaded"], loop(pipe, off, session.queue.get_nowait, kps, fps, per))
            finally:
                session.producer.stop()
    pipe.release()
    off.release()
    return out


def _merge(into: dict, part: dict) -> None:
    into["times"] += part["times"]
    into["waits"] += part["waits"]
    into["late"] += part["late"]


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="per phase, in all")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--nice-producer", type=int, default=0)
    args = ap.parse_args()
    res = run(common.size_list(args.size)[0], args.fps, args.seconds, args.rounds,
              args.nice_producer)
    rows = []
    for name, r in res.items():
        t = r["times"]
        rows.append({"phase": name, "frames": len(t), "p50_ms": 1e3 * common.pct(t, 50),
                     "p99_ms": 1e3 * common.pct(t, 99), "max_ms": 1e3 * max(t),
                     "late": r["late"], "waits": r["waits"]})
    ratio = rows[1]["p99_ms"] / rows[0]["p99_ms"]
    common.emit("pacing", rows, args.json,
                {"size": args.size, "fps": args.fps, "nice_producer": args.nice_producer,
                 "p99_loaded_over_unloaded": ratio,
                 "target": "waits == 0 and p99 ratio <= 1.25",
                 "met": rows[1]["waits"] == 0 and ratio <= 1.25})


if __name__ == "__main__":
    main()
