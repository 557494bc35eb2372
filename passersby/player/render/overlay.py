"""The heads-up overlay of a tuned run: lines of text (PIL) in a translucent panel at the
top left of the output, blended over the picture. Redrawn only when its text changes."""
from __future__ import annotations

import textwrap

import moderngl
import numpy as np

from passersby.player.render.shaders import ProgramCache

PAD, BG, FG, HI, ERR = 10, (12, 11, 10, 190), (235, 226, 210, 255), (255, 196, 64, 255), \
    (255, 96, 80, 255)


class Overlay:
    def __init__(self, ctx: moderngl.Context, programs: ProgramCache | None = None,
                 font_px: int = 16) -> None:
        from PIL import ImageFont

        self.ctx = ctx
        self.programs = programs or ProgramCache(ctx)
        self.vao = ctx.vertex_array(self.programs.get("panel"), [])
        self.font = ImageFont.load_default(size=font_px)
        self.line_h = font_px + 4
        self.texture: moderngl.Texture | None = None
        self._key: tuple | None = None

    def set_text(self, lines: list[str], highlight: int | None = None,
                 error: str | None = None) -> None:
        key = (tuple(lines), highlight, error)
        if key == self._key:
            return
        self._key = key
        from PIL import Image, ImageDraw

        rows = list(lines) + (textwrap.wrap(f"! {error}", 96) if error else [])
        n_error = len(rows) - len(lines)
        width = max([int(self.font.getlength(r)) for r in rows] + [1]) + 2 * PAD
        height = len(rows) * self.line_h + 2 * PAD
        image = Image.new("RGBA", (width, height), BG)
        draw = ImageDraw.Draw(image)
        for i, row in enumerate(rows):
            fill = ERR if i >= len(rows) - n_error else HI if i == highlight else FG
            draw.text((PAD, PAD + i * self.line_h), row, font=self.font, fill=fill)
        pixels = np.asarray(image)
        if self.texture is None or self.texture.size != (width, height):
            if self.texture is not None:
                self.texture.release()
            self.texture = self.ctx.texture((width, height), 4, pixels.tobytes())
        else:
            self.texture.write(pixels.tobytes())

    def draw(self, target: moderngl.Framebuffer | object) -> None:
        """Over `target` (already rendered): the panel at the top left, 1:1 pixels."""
        if self.texture is None:
            return
        w, h = self.texture.size
        tw, th = target.size  # type: ignore[attr-defined]
        target.use()  # type: ignore[attr-defined]
        target.viewport = (PAD, max(0, th - h - PAD), min(w, tw), min(h, th))  # type: ignore[attr-defined]
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self.texture.use(0)
        self.vao.render(moderngl.TRIANGLES, vertices=3)
        self.ctx.disable(moderngl.BLEND)
        target.viewport = (0, 0, tw, th)  # type: ignore[attr-defined]

    def release(self) -> None:
        self.vao.release()
        if self.texture is not None:
            self.texture.release()
