"""Painted detail at the output's own size: the part of Pipeline that paints each
keyframe once more, at the size its portrait has on the screen.

Per keyframe, after the work-size passes (upsample, Kuwahara, grade): the structure
pass takes the graded picture's structure tensor at work size (its mipmaps smooth
it), then the detail pass (shaders/detail.frag) paints strokes along the form, a
canvas and varnish into an output-size texture (and shaders/craquelure.frag its
cracks over it, when asked), in horizontal bands spread over
displayed frames like the work-size painting. The present pass then only
dissolves two such textures, one texel each per output pixel, so the per-frame
cost stays at the floor.

Device switch: on a software renderer (llvmpipe) the detail pass is the costliest
thing a keyframe does, so it runs in bands of BAND_PX pixels and with fewer stroke
samples (`look.detail_taps: 0` = 2); on a GPU it is microseconds: one band, 8.
"""
from __future__ import annotations

import math

import moderngl

BAND_PX = 1 << 18           # output pixels per detail band on a software renderer
SOFTWARE = ("llvmpipe", "softpipe", "swiftshader", "software")
TAPS_GPU, TAPS_SOFTWARE = 8, 2
FLOW_LOD = 2.0              # tensor mip level read: smoothed over ~4 work pixels
DRAG_TEXELS = 1.5           # how far (work texels) a stroke fetches its neighbour's colour


def is_software(ctx: moderngl.Context) -> bool:
    """True on a software rasteriser, where every sample costs CPU time."""
    renderer = str(ctx.info.get("GL_RENDERER", "")).lower()
    return any(word in renderer for word in SOFTWARE)


def crop_of(aspect: float) -> tuple[float, float]:
    """The centre crop of the square work image that a portrait of `aspect` shows."""
    return (aspect, 1.0) if aspect < 1.0 else (1.0, 1.0 / aspect)


class DetailMixin:
    """Detail textures and passes of Pipeline (uses its ctx, programs, look, _pass)."""

    ctx: moderngl.Context

    def _init_detail(self) -> None:
        self.software = is_software(self.ctx)
        self._flow: moderngl.Texture | None = None
        self._flow_fbo: moderngl.Framebuffer | None = None
        self._detail: list[moderngl.Texture] = []        # [prev, next] at portrait size
        self._detail_fbos: list[moderngl.Framebuffer] = []
        self._detail_size: tuple[int, int] | None = None

    @property
    def detail_on(self) -> bool:
        """Detail is painted and shown: the look asks for it and a size is known."""
        return self.look.detail > 0.0 and self._detail_size is not None

    def detail_bands(self) -> int:
        if not self.detail_on:
            return 0
        if not self.software:
            return 1
        w, h = self._detail_size
        return max(1, math.ceil(w * h / BAND_PX))

    def _make_flow(self, size: int) -> None:
        for obj in (self._flow_fbo, self._flow):
            if obj is not None:
                obj.release()
        self._flow = self.ctx.texture((size, size), 4, dtype="f2")
        self._flow.filter = (moderngl.LINEAR_MIPMAP_NEAREST, moderngl.LINEAR)  # 4 taps, not 8
        self._flow.repeat_x = self._flow.repeat_y = False
        self._flow_fbo = self.ctx.framebuffer(color_attachments=[self._flow])

    def _make_detail(self, size: tuple[int, int]) -> None:
        """Output-size textures for the portrait (first frame, a new size): not per frame."""
        self._release_detail()
        for _ in range(2):
            tex = self.ctx.texture(size, 4)
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)   # present reads texel centres
            tex.repeat_x = tex.repeat_y = False
            self._detail.append(tex)
            self._detail_fbos.append(self.ctx.framebuffer(color_attachments=[tex]))
        self._detail_size = size

    def _release_detail(self) -> None:
        for obj in (*self._detail_fbos, *self._detail):
            obj.release()
        self._detail, self._detail_fbos, self._detail_size = [], [], None

    def _detail_uniforms(self) -> None:
        """The look's detail keys in output pixels of this portrait (thousandths of its
        height), with floors that keep each pattern above the pixel grid."""
        if self._detail_size is None:
            return
        look, prog = self.look, self.programs.get("detail")
        unit = self._detail_size[1] / 1000.0
        taps = look.detail_taps or (TAPS_SOFTWARE if self.software else TAPS_GPU)
        values = {"work_tex": 0, "flow_tex": 1, "crop": crop_of(look.aspect),
                  "size": tuple(float(v) for v in self._detail_size),
                  "flow_lod": FLOW_LOD, "detail": float(look.detail), "detail_taps": int(taps),
                  "stroke_length_px": max(look.stroke_length * unit, 2.0),
                  "stroke_width_px": max(look.stroke_width * unit, 1.0),
                  "stroke_drag": float(look.stroke_drag), "drag_texels": DRAG_TEXELS,
                  "impasto": float(look.impasto), "canvas": float(look.canvas),
                  "canvas_weave_px": max(look.canvas_weave * unit, 2.5),
                  "varnish": float(look.varnish), "craquelure": float(look.craquelure),
                  "crack_size_px": max(look.crack_size * unit, 4.0)}
        for program in (prog, self.programs.get("craquelure")):
            for name, value in values.items():
                if name in program:
                    program[name].value = value
        if "src_tex" in self.programs.get("structure"):
            self.programs.get("structure")["src_tex"].value = 0

    def _detail_band(self, painted: moderngl.Texture, into: int, band: int) -> None:
        """Band `band` of detail_bands() of the keyframe painted in `painted`; band 0
        first takes its structure tensor."""
        if band == 0:
            self._pass("structure", self._flow_fbo, (painted,))
            self._flow.build_mipmaps()
            self._flow.filter = (moderngl.LINEAR_MIPMAP_NEAREST, moderngl.LINEAR)
        n = self.detail_bands()
        w, h = self._detail_size
        y0, y1 = h * band // n, h * (band + 1) // n
        box = (0, y0, w, y1 - y0)
        self._pass("detail", self._detail_fbos[into], (painted, self._flow), box)
        if self.look.craquelure > 0.0:                 # multiplied over the band
            self.ctx.enable(moderngl.BLEND)
            self.ctx.blend_func = moderngl.ZERO, moderngl.SRC_COLOR
            self._pass("craquelure", self._detail_fbos[into], (), box)
            self.ctx.disable(moderngl.BLEND)
