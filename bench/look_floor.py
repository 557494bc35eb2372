"""Look vs floor: the full look pipeline against a bare textured blit, through EGL.

    .venv/bin/python bench/look_floor.py [--sizes 640x360,1280x720,1920x1080]
        [--rounds 12] [--display-fps 60] [--kps 4] [--detail D] [--json]

The floor is one pass that touches each output pixel once: a bilinear fetch of a
work-size texture, written out. The look is Pipeline.render as the player drives
it: a keyframe pushed every display_fps / kps frames, render(t) every frame (the
keyframe is painted over Pipeline.paint_steps frames, then only the present pass
runs). Each frame ends with ctx.finish(), so the time is the GL work. Floor and
look alternate in rounds of one keyframe interval; the ratio is taken per round
and the median reported. Also reported: the present pass alone (steady frames),
the worst frame (a painting step) and "paint every frame", the cost the look
had when all work-size passes ran on every displayed frame.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import common

BLIT = """#version 330 core
uniform sampler2D tex;
in vec2 uv;
out vec4 color;
void main() { color = texture(tex, uv); }
"""


def _frame_times(fn: Callable[[int], None], frames: int, finish: Callable[[], None]) -> list[float]:
    out = []
    for i in range(frames):
        t0 = time.perf_counter()
        fn(i)
        finish()
        out.append(time.perf_counter() - t0)
    return out


def make_floor(off: Any, work_size: int) -> tuple[Callable[[int], None], list[Any]]:
    """The floor: one bilinear fetch of a work-size texture per output pixel."""
    import moderngl

    from passersby.player.render.shaders import DEFAULT_SHADER_DIR

    ctx = off.ctx
    vert = (DEFAULT_SHADER_DIR / "fullscreen.vert").read_text()
    blit = ctx.program(vertex_shader=vert, fragment_shader=BLIT)
    vao = ctx.vertex_array(blit, [])
    noise = np.random.default_rng(1).integers(0, 255, work_size ** 2 * 4, dtype=np.uint8)
    tex = ctx.texture((work_size, work_size), 4, noise.tobytes())
    tex.filter = (moderngl.LINEAR, moderngl.LINEAR)

    def floor(i: int) -> None:
        off.fbo.use()
        off.fbo.viewport = (0, 0, *off.size)
        tex.use(0)
        vao.render(moderngl.TRIANGLES, vertices=3)
    return floor, [vao, blit, tex]


def measure(size: tuple[int, int], rounds: int, per_kf: int,
            detail: float | None = None) -> dict[str, Any]:
    from passersby.common.config import LookConfig
    from passersby.player.display import Offscreen
    from passersby.player.render.pipeline import Pipeline

    off = Offscreen(size)
    ctx = off.ctx
    look = LookConfig() if detail is None else LookConfig(detail=detail)
    pipe = Pipeline(ctx, look, (64, 64))
    keys = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    pipe.set_keyframes(keys[0], keys[1])
    floor, floor_objs = make_floor(off, look.work_size)

    def look_frame(i: int) -> None:
        if i % per_kf == 0:
            pipe.push_keyframe(keys[(i // per_kf) % len(keys)])
        pipe.render(off.fbo, (i % per_kf) / per_kf, i / 60)

    def repaint_frame(i: int) -> None:          # all work-size passes every frame
        pipe.set_keyframes(keys[0], keys[1])   # paints two keyframes: halve it below
        pipe.render(off.fbo, 0.5, i / 60)

    for fn in (floor, look_frame):              # warm up: compile, first touches
        _frame_times(fn, per_kf, ctx.finish)
    floors, looks, ratios = [], [], []
    for r in range(rounds):
        f = _frame_times(floor, per_kf, ctx.finish)
        lk = _frame_times(lambda i: look_frame(i + r * per_kf), per_kf, ctx.finish)
        floors += f
        looks += lk
        ratios.append(float(np.mean(lk) / np.mean(f)))
    steady = looks[per_kf - 1::per_kf]          # last frame of each interval: present only
    paint_two = float(np.median(_frame_times(repaint_frame, 6, ctx.finish)))
    present_only = float(np.median(steady))
    row = {"size": f"{size[0]}x{size[1]}",
           "floor_ms": 1e3 * float(np.median(floors)),
           "look_mean_ms": 1e3 * float(np.mean(looks)),
           "ratio": float(np.median(ratios)),
           "present_ms": 1e3 * present_only,
           "present_ratio": present_only / float(np.median(floors)),
           "worst_ms": 1e3 * float(np.max(looks)),
           # one keyframe painted + present: (two painted + present) minus half
           "paint_every_frame_ms": 1e3 * (paint_two + present_only) / 2}
    for obj in floor_objs:
        obj.release()
    pipe.release()
    off.release()
    return row


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--display-fps", type=float, default=60.0)
    ap.add_argument("--kps", type=float, default=4.0, help="keyframes per second")
    ap.add_argument("--detail", type=float, default=None,
                    help="look.detail (default: the look's; 0 = without the detail pass)")
    args = ap.parse_args()
    per_kf = max(1, round(args.display_fps / args.kps))
    rows = [measure(s, args.rounds, per_kf, args.detail) for s in common.size_list(args.sizes)]
    common.emit("look_floor", rows, args.json,
                {"target": "ratio <= 1.3 at every size",
                 "met": all(r["ratio"] <= 1.3 for r in rows),
                 "frames_per_keyframe": per_kf})


if __name__ == "__main__":
    main()
