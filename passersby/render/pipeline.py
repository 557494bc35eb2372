"""The render pipeline: keyframes -> morph -> painterly -> grade -> present.

Everything expensive runs on a square "work" image (LookConfig.work_size); the
output size gets exactly one cheap pass (present). GL objects are made in
__init__ (and in set_look when work_size changes), never per frame; keyframes
are uploaded with texture.write into textures made once.

Orientation: keyframes are numpy [H,W,3] uint8, top row first. Work textures and
the output framebuffer are GL bottom-up; the morph pass does the flip, so the
output shows the picture upright (Offscreen.read flips back to top row first).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import moderngl
import numpy as np

from passersby.config import LookConfig
from passersby.render.shaders import PASSES, ProgramCache

log = logging.getLogger(__name__)

GRAIN_FPS = 60.0            # grain pattern changes this often (per second of time_s)
_SEED_WRAP = 1 << 24        # keep the seed exact in float64 maths for years of uptime


class RenderTarget(Protocol):
    """What render() draws into: a moderngl.Framebuffer or display.ScreenTarget."""
    viewport: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]: ...

    def use(self) -> None: ...


def portrait_rect(out_size: tuple[int, int], look: LookConfig) -> tuple[int, int, int, int]:
    """Portrait (x0, y0, width, height) in output pixels, bottom-left origin, centred.

    Height is `portrait_height` of the output height and width = height * aspect;
    when that is wider than `portrait_height` of the output width, both shrink to fit.
    Snapped to whole pixels so the frame line stays crisp.
    """
    w_out, h_out = out_size
    h = look.portrait_height * h_out
    w = h * look.aspect
    max_w = look.portrait_height * w_out
    if w > max_w:
        h, w = h * max_w / w, max_w
    wi, hi = max(1, round(w)), max(1, round(h))
    return (w_out - wi) // 2, (h_out - hi) // 2, wi, hi


def _set(program: moderngl.Program, name: str, value: object) -> None:
    """Set a uniform if the driver kept it (unused uniforms are optimised away)."""
    if name in program:
        program[name].value = value


class Pipeline:
    """Draws the current look of a morph between two keyframes into a framebuffer."""

    def __init__(self, ctx: moderngl.Context, look: LookConfig,
                 source_size: tuple[int, int], shader_dir: Path | None = None) -> None:
        self.ctx = ctx
        self.source_size = (int(source_size[0]), int(source_size[1]))   # (W, H)
        if min(self.source_size) < 1:
            raise ValueError(f"source_size {source_size} must be a positive (width, height)")
        self.programs = ProgramCache(ctx, shader_dir)
        for name in PASSES:
            self.programs.get(name)          # build all now: errors surface at start
        self._vaos: dict[str, moderngl.VertexArray] = {}
        self._make_vaos()
        self._prev = self._source_texture()
        self._next = self._source_texture()
        self._work: list[moderngl.Texture] = []
        self._fbos: list[moderngl.Framebuffer] = []
        self.look = look
        self._make_work(look.work_size)
        self.set_look(look)

    # -- GL objects (made at start, on work_size change, after a shader reload) --

    def _source_texture(self) -> moderngl.Texture:
        tex = self.ctx.texture(self.source_size, 3, alignment=1)   # RGB8
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)          # read via texelFetch
        tex.repeat_x = tex.repeat_y = False
        tex.write(np.zeros((self.source_size[1], self.source_size[0], 3), np.uint8))
        return tex

    def _make_work(self, size: int) -> None:
        for fbo in self._fbos:
            fbo.release()
        for tex in self._work:
            tex.release()
        self._work, self._fbos = [], []
        for _ in range(2):                   # ping-pong pair, RGBA8
            tex = self.ctx.texture((size, size), 4)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            self._work.append(tex)
            self._fbos.append(self.ctx.framebuffer(color_attachments=[tex]))
        self._work_size = size

    def _make_vaos(self) -> None:
        for vao in self._vaos.values():
            vao.release()
        self._vaos = {name: self.ctx.vertex_array(self.programs.get(name), [])
                      for name in PASSES}

    # -- inputs --

    def _check_frame(self, frame: np.ndarray, what: str) -> np.ndarray:
        w, h = self.source_size
        if not isinstance(frame, np.ndarray) or frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            got = (f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray)
                   else type(frame).__name__)
            raise ValueError(f"{what}: expected a uint8 array of shape ({h}, {w}, 3) "
                             f"(the pipeline's source_size {w}x{h}), got {got}; resize "
                             f"or convert the keyframe, or build the Pipeline with its size")
        return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)

    def set_keyframes(self, prev: np.ndarray, next: np.ndarray) -> None:
        """Upload both keyframes ([H,W,3] uint8, top row first) at source_size."""
        self._prev.write(self._check_frame(prev, "prev keyframe"))
        self._next.write(self._check_frame(next, "next keyframe"))

    def push_keyframe(self, frame: np.ndarray) -> None:
        """The old `next` becomes `prev` (texture swap, no copy); `frame` is the new next."""
        frame = self._check_frame(frame, "pushed keyframe")
        self._prev, self._next = self._next, self._prev
        self._next.write(frame)

    def set_look(self, look: LookConfig) -> None:
        """Apply a look: uniforms only, except a new work_size remakes the work FBOs."""
        if look.work_size != self._work_size:
            log.info("work size %d -> %d", self._work_size, look.work_size)
            self._make_work(look.work_size)
        self.look = look
        self._apply_uniforms()

    def _apply_uniforms(self) -> None:
        look, get = self.look, self.programs.get
        morph, paint, grade, present = (get(n) for n in PASSES)
        _set(morph, "prev_tex", 0)
        _set(morph, "next_tex", 1)
        _set(morph, "curve", 1 if look.morph_curve == "smooth" else 0)
        _set(paint, "src_tex", 0)
        _set(paint, "strength", float(look.painterly))
        _set(paint, "radius", int(look.painterly_radius))
        _set(grade, "src_tex", 0)
        for name in ("sharpen", "exposure", "contrast", "saturation", "warmth", "gamma"):
            _set(grade, name, float(getattr(look, name)))
        _set(present, "work_tex", 0)
        _set(present, "aspect", float(look.aspect))
        _set(present, "mat_color", tuple(float(c) for c in look.mat_color))
        _set(present, "frame_color", tuple(float(c) for c in look.frame_color))
        _set(present, "vignette", float(look.vignette))
        _set(present, "grain", float(look.grain))

    # -- drawing --

    def _pass(self, name: str, target: RenderTarget,
              inputs: tuple[moderngl.Texture, ...]) -> None:
        target.use()
        target.viewport = (0, 0, *target.size)
        for unit, tex in enumerate(inputs):
            tex.use(unit)
        self._vaos[name].render(moderngl.TRIANGLES, vertices=3)

    def render(self, fbo: RenderTarget, t: float, time_s: float) -> None:
        """Morph at t (0 = prev, 1 = next), look passes at work size, present into fbo.

        `time_s` drives the grain; the viewport is set to fbo.size.
        """
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        look, (a, b), (fa, fb) = self.look, self._work, self._fbos
        _set(self.programs.get("morph"), "t", min(max(float(t), 0.0), 1.0))
        self._pass("morph", fa, (self._prev, self._next))
        if look.painterly > 0.0:
            self._pass("painterly", fb, (a,))
            a, b, fa, fb = b, a, fb, fa
        self._pass("grade", fb, (a,))
        present = self.programs.get("present")
        _set(present, "rect", tuple(float(v) for v in portrait_rect(fbo.size, look)))
        _set(present, "frame_px", float(look.frame_width * fbo.size[1]))
        _set(present, "grain_seed", int(time_s * GRAIN_FPS) % _SEED_WRAP)
        self._pass("present", fbo, (b,))

    # -- live tuning, teardown --

    def reload_shaders(self) -> list[str]:
        """Re-read shader files; failing passes keep their last good program."""
        before = {n: self.programs.get(n) for n in PASSES}
        errors = self.programs.reload()
        if any(self.programs.get(n) is not before[n] for n in PASSES):
            self._make_vaos()
            self._apply_uniforms()
        return errors

    def release(self) -> None:
        for obj in (*self._vaos.values(), *self._fbos, *self._work, self._prev, self._next):
            obj.release()
        self._vaos, self._fbos, self._work = {}, [], []
        self.programs.release()
