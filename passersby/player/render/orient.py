"""Screens hung on their side (`screens[k].rotate`): the maps between the framebuffer
and the upright picture that the present pass uses; no GL here.

The picture is turned `rotate` degrees clockwise in the framebuffer (y up, GL
convention), so a landscape panel hung upright with its top edge on the left
(rotate 90) shows it upright. Captures turn it back (display.Readback).
"""
from __future__ import annotations


def orientation(rotate: int,
                size: tuple[int, int]) -> tuple[tuple[float, ...], tuple[float, float]]:
    """Physical framebuffer pixel -> upright picture pixel, for a picture turned `rotate`
    degrees clockwise in a framebuffer of `size`: (mat2 column-major, offset)."""
    w, h = size
    return {0: ((1.0, 0.0, 0.0, 1.0), (0.0, 0.0)),
            90: ((0.0, 1.0, -1.0, 0.0), (float(h), 0.0)),
            180: ((-1.0, 0.0, 0.0, -1.0), (float(w), float(h))),
            270: ((0.0, -1.0, 1.0, 0.0), (0.0, float(w)))}[rotate]


def upright_size(rotate: int, size: tuple[int, int]) -> tuple[int, int]:
    return (size[1], size[0]) if rotate in (90, 270) else (size[0], size[1])


def physical_box(box: tuple[int, int, int, int], rotate: int,
                 size: tuple[int, int]) -> tuple[int, int, int, int]:
    """An upright-picture box (x, y, w, h) as the framebuffer box it is drawn in."""
    x, y, bw, bh = box
    w, h = size
    return {0: (x, y, bw, bh), 90: (y, h - x - bw, bh, bw),
            180: (w - x - bw, h - y - bh, bw, bh), 270: (w - y - bh, x, bh, bw)}[rotate]
