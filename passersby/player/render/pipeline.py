"""The render pipeline: keyframe -> upsample -> painterly -> grade; present = dissolve + mat.

Everything expensive runs on a square "work" image (LookConfig.work_size), once per
KEYFRAME, not once per displayed frame: each keyframe is upsampled, painted and
graded into its own "painted" work texture when it arrives, spread over
`paint_steps` displayed frames (horizontal bands of the painterly pass, so no
frame pays the whole filter), and the morph while it is being painted waits at
the previous picture, then runs over the rest of the interval. Per displayed
frame only the present pass runs, at output size, over the portrait only (the
flat mat is a clear): it cross-dissolves the two painted keyframes and adds the
frame line and grain (the vignette is baked in by grade). On llvmpipe this took
the default look at 640x360 from ~25 ms to ~5 ms a frame, painting amortised
(bench/look_floor.py).

GL objects are made in __init__ (and in set_look when work_size changes), never
per frame; keyframes are uploaded through PBOs (render/upload.py) into textures
made once.

Orientation: keyframes are numpy [H,W,3] uint8, top row first. Work textures and
the output framebuffer are GL bottom-up; the upsample pass does the flip, so the
output shows the picture upright (Offscreen.read flips back to top row first).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol

import moderngl
import numpy as np

from passersby.common.config import LookConfig
from passersby.player.render.detail import DetailMixin, crop_of
from passersby.player.render.orient import orientation, physical_box, upright_size
from passersby.player.render.shaders import PASSES, ProgramCache
from passersby.player.render.upload import PboUploader

log = logging.getLogger(__name__)

PAINT_STEPS = 4             # displayed frames over which one keyframe is painted
PAINT_SHARE = 0.25          # ... at most: painting ends within this share of the interval
PAINT_SHARE_DETAIL = 0.5    # ... with the output-size detail bands too
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


def _grow(rect: tuple[int, int, int, int], margin: int,
          size: tuple[int, int]) -> tuple[int, int, int, int]:
    """rect (x, y, w, h) grown by margin on every side, clipped to size (W, H)."""
    x0, y0 = max(rect[0] - margin, 0), max(rect[1] - margin, 0)
    x1 = min(rect[0] + rect[2] + margin, size[0])
    y1 = min(rect[1] + rect[3] + margin, size[1])
    return x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)


def _set(program: moderngl.Program, name: str, value: object) -> None:
    """Set a uniform if the driver kept it (unused uniforms are optimised away)."""
    if name in program:
        program[name].value = value


class Pipeline(DetailMixin):
    """Draws the current look of a morph between two keyframes into a framebuffer."""

    def __init__(self, ctx: moderngl.Context, look: LookConfig,
                 source_size: tuple[int, int], shader_dir: Path | None = None,
                 paint_steps: int = PAINT_STEPS, flat_mat: bool | None = None) -> None:
        """`flat_mat`: paint the mat with a clear and shade only the portrait; right for
        the shipped present.frag (a flat mat). None = only with the shipped shaders;
        an edited present.frag (reload_shaders) turns it off, so every edit shows."""
        self.ctx = ctx
        self.flat_mat = shader_dir is None if flat_mat is None else flat_mat
        if paint_steps < 1:
            raise ValueError(f"paint_steps {paint_steps} must be >= 1")
        self.paint_steps = int(paint_steps)
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
        self._uploader = PboUploader(ctx, self.source_size[0] * self.source_size[1] * 3)
        self._work: list[moderngl.Texture] = []
        self._fbos: list[moderngl.Framebuffer] = []
        self._painted: list[moderngl.Texture] = []        # [prev, next] looks, work size
        self._painted_fbos: list[moderngl.Framebuffer] = []
        self._init_detail()
        self._pending = 0        # painting steps left for the next keyframe; 0 = ready
        self._t_ready = 0.0      # morph t at which the next keyframe was ready
        self._last_t = 0.0       # t of the previous render, and its last increase:
        self._dt_t = 0.0         # how far t moves per displayed frame
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
        for obj in (*self._fbos, *self._work, *self._painted_fbos, *self._painted):
            obj.release()
        self._work, self._fbos = self._work_pair(size)             # ping-pong, RGBA8
        self._painted, self._painted_fbos = self._work_pair(size)  # prev, next
        self._make_flow(size)
        self._work_size = size

    def _work_pair(self, size: int) -> tuple[list[moderngl.Texture], list[moderngl.Framebuffer]]:
        texs, fbos = [], []
        for _ in range(2):
            tex = self.ctx.texture((size, size), 4)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            texs.append(tex)
            fbos.append(self.ctx.framebuffer(color_attachments=[tex]))
        return texs, fbos

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
        """Upload both keyframes ([H,W,3] uint8, top row first) and paint them now."""
        self._uploader.write(self._prev, self._check_frame(prev, "prev keyframe"))
        self._uploader.write(self._next, self._check_frame(next, "next keyframe"))
        self._repaint()

    def push_keyframe(self, frame: np.ndarray) -> None:
        """The old `next` becomes `prev` (texture swap, no copy); `frame` is the new next.

        Its painting is spread over the next `paint_steps` render() calls.
        """
        frame = self._check_frame(frame, "pushed keyframe")
        self._finish_painting()               # two pushes in one frame: finish the first
        self._prev, self._next = self._next, self._prev
        for pair in (self._painted, self._painted_fbos, self._detail, self._detail_fbos):
            pair.reverse()
        self._uploader.write(self._next, frame)
        self._pending, self._t_ready = self.steps, 0.0

    @property
    def steps(self) -> int:
        """Displayed frames over which a keyframe is painted: work size, then detail."""
        return self.paint_steps + self.detail_bands()

    @property
    def painting(self) -> bool:
        """True while the newest keyframe is still being painted (the morph waits)."""
        return self._pending > 0

    def set_look(self, look: LookConfig) -> None:
        """Apply a look: uniforms only, except a new work_size remakes the work FBOs."""
        if look.work_size != self._work_size:
            log.info("work size %d -> %d", self._work_size, look.work_size)
            self._make_work(look.work_size)
        self._finish_painting()
        self.look = look
        self._apply_uniforms()
        self._repaint()                       # painted keyframes carry the look

    def _apply_uniforms(self) -> None:
        look, get = self.look, self.programs.get
        upsample, paint, grade, present = (get(n) for n in ("upsample", "painterly", "grade",
                                                            "present"))
        _set(upsample, "src_tex", 0)
        _set(paint, "src_tex", 0)
        _set(paint, "painterly", float(look.painterly))
        _set(paint, "painterly_radius", int(look.painterly_radius))
        _set(grade, "src_tex", 0)
        for name in ("sharpen", "exposure", "contrast", "saturation", "warmth", "gamma",
                     "vignette", "aspect"):
            _set(grade, name, float(getattr(look, name)))
        _set(present, "work_tex", 0)
        _set(present, "next_tex", 1)
        self._detail_uniforms()
        _set(present, "mat_color", tuple(float(c) for c in look.mat_color))
        _set(present, "frame_color", tuple(float(c) for c in look.frame_color))
        _set(present, "grain", float(look.grain))

    # -- drawing --

    def _pass(self, name: str, target: RenderTarget,
              inputs: tuple[moderngl.Texture, ...],
              box: tuple[int, int, int, int] | None = None) -> None:
        """Draw pass `name` over target (viewport = its size); only `box` if given."""
        target.use()
        target.viewport = (0, 0, *target.size)
        if box is not None:                   # x, y, width, height
            self.ctx.scissor = box
        for unit, tex in enumerate(inputs):
            tex.use(unit)
        self._vaos[name].render(moderngl.TRIANGLES, vertices=3)
        if box is not None:
            self.ctx.scissor = None

    def _paint_step(self, raw: moderngl.Texture, into: int, step: int) -> None:
        """One of `paint_steps` steps painting `raw` into self._painted[into].

        Step 0 upsamples the whole keyframe; each step paints one band of rows;
        the last step grades the whole picture (its unsharp mask needs the
        neighbouring bands) into the painted texture. Steps past paint_steps paint
        the output-size detail in bands (render/detail.py).
        """
        if step >= self.paint_steps:
            self._detail_band(self._painted[into], into, step - self.paint_steps)
            return
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        (a, b), (fa, fb), n = self._work, self._fbos, self.paint_steps
        if step == 0:
            self._pass("upsample", fa, (raw,))
        if self.look.painterly > 0.0:
            x0, y0, w, h = self._visible_box()
            b0, b1 = y0 + h * step // n, y0 + h * (step + 1) // n      # a band of its rows
            self._pass("painterly", fb, (a,), (x0, b0, w, b1 - b0))
            a = b
        if step == n - 1:
            self._pass("grade", self._painted_fbos[into], (a,))

    def _visible_box(self, margin: int = 2) -> tuple[int, int, int, int]:
        """The part of the work image present shows (the centre crop to the look's
        aspect), plus a margin for bilinear and unsharp neighbours: x, y, w, h."""
        size, aspect = self._work_size, self.look.aspect
        w = size if aspect >= 1.0 else math.ceil(size * aspect)
        h = size if aspect <= 1.0 else math.ceil(size / aspect)
        x0, y0 = (size - w) // 2, (size - h) // 2
        return _grow((x0, y0, w, h), margin, (size, size))

    def _repaint(self) -> None:
        """Paint both keyframes now (start, new look, new shaders)."""
        for into, raw in enumerate((self._prev, self._next)):
            for step in range(self.steps):
                self._paint_step(raw, into, step)
        self._pending, self._t_ready = 0, 0.0

    def _finish_painting(self) -> None:
        while self._pending:
            self._paint_step(self._next, 1, self.steps - self._pending)
            self._pending -= 1

    def _mix(self, t: float) -> float:
        """The dissolve weight of the next keyframe for morph time t, after the curve.

        While the next keyframe is being painted it is 0; once ready (at t_ready)
        the dissolve runs over what is left of the interval, reaching 1 at t = 1.
        One painting step per frame, unless that would run past PAINT_SHARE of the
        interval (few frames per keyframe: e.g. a 12 fps render), then all at once.
        """
        t = min(max(float(t), 0.0), 1.0)
        if t > self._last_t:
            self._dt_t = t - self._last_t
        self._last_t = t
        if self._pending:
            self._paint_step(self._next, 1, self.steps - self._pending)
            self._pending -= 1
            share = PAINT_SHARE_DETAIL if self.detail_on else PAINT_SHARE
            if t >= 1.0 or t + self._dt_t > share:
                self._finish_painting()       # the morph is due: no more waiting
            if self._pending:
                return 0.0
            if t < 1.0:
                self._t_ready = t
        k = 1.0 if t >= 1.0 else max(t - self._t_ready, 0.0) / (1.0 - self._t_ready)
        return k * k * (3.0 - 2.0 * k) if self.look.morph_curve == "smooth" else k

    def _fit_detail(self, rect: tuple[int, int, int, int]) -> None:
        """Detail textures of the portrait's size: made (and both keyframes painted at
        once) on the first frame and when the output size changes, never per frame."""
        if self.look.detail <= 0.0 or self._detail_size == (rect[2], rect[3]):
            return
        self._finish_painting()
        self._make_detail((rect[2], rect[3]))
        self._detail_uniforms()
        for into in range(2):
            for band in range(self.detail_bands()):
                self._detail_band(self._painted[into], into, band)

    def render(self, fbo: RenderTarget, t: float, time_s: float, rotate: int = 0) -> None:
        """Present the morph at t (0 = prev, 1 = next) into fbo at its size.

        Paints one step of a newly pushed keyframe first (see `_mix`); `time_s`
        drives the grain; the viewport is set to fbo.size. `rotate` (0, 90, 180,
        270) turns the picture clockwise in fbo, for a panel hung on its side: the
        present pass maps each pixel, no extra copy.
        """
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        look, present = self.look, self.programs.get("present")
        size = upright_size(rotate, fbo.size)
        rect = portrait_rect(size, look)
        self._fit_detail(rect)
        k = self._mix(t)
        matrix, offset = orientation(rotate, fbo.size)
        _set(present, "orient", matrix)
        _set(present, "orient_offset", offset)
        _set(present, "mix_k", k)
        _set(present, "rect", tuple(float(v) for v in rect))
        _set(present, "crop", (1.0, 1.0) if self.detail_on else crop_of(look.aspect))
        frame_px = float(look.frame_width * size[1])
        _set(present, "frame_width_px", frame_px)
        _set(present, "grain_seed", int(time_s * GRAIN_FPS) % _SEED_WRAP)
        box = None
        if self.flat_mat:
            # The mat is one colour: a clear (a memset on llvmpipe) paints it and the
            # shader runs only over the portrait and its frame line: the same pixels
            # as shading the whole screen, at about half the cost in software.
            fbo.use()
            self.ctx.clear(*(float(c) for c in look.mat_color), 1.0, viewport=(0, 0, *fbo.size))
            box = physical_box(_grow(rect, math.ceil(frame_px) + 2, size), rotate, fbo.size)
        shown = self._detail if self.detail_on else self._painted
        self._pass("present", fbo, tuple(shown), box)

    # -- live tuning, teardown --

    def reload_shaders(self) -> list[str]:
        """Re-read shader files; failing passes keep their last good program."""
        before = {n: self.programs.get(n) for n in PASSES}
        errors = self.programs.reload()
        if self.programs.get("present") is not before["present"]:
            self.flat_mat = False             # an edited mat may not be flat any more
        if any(self.programs.get(n) is not before[n] for n in PASSES):
            self._make_vaos()
            self._apply_uniforms()
            self._repaint()
        return errors

    def release(self) -> None:
        for obj in (*self._vaos.values(), *self._fbos, *self._work, *self._painted_fbos,
                    *self._painted, self._prev, self._next, self._flow_fbo, self._flow):
            obj.release()
        self._release_detail()
        self._vaos, self._fbos, self._work, self._painted, self._painted_fbos = {}, [], [], [], []
        self._uploader.release()
        self.programs.release()
