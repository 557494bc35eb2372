"""A face detector used as a yardstick (audit, tests, training's crops and measures):
OpenCV's Haar cascades, set up here once for every user.

Optional: needs `opencv-python-headless<5` (the `audit` extra); OpenCV 5 dropped the
cascades from the wheel.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from passersby.common.errors import UserError

FRONTAL_FACE = "haarcascade_frontalface_default.xml"
EYE = "haarcascade_eye.xml"
OPENCV = "opencv-python-headless<5"


class NoDetector(UserError, RuntimeError):
    """OpenCV or one of its Haar cascades is missing; the message says what to install."""


@lru_cache(maxsize=4)
def cascade(name: str = FRONTAL_FACE) -> Any:
    """OpenCV's Haar cascade `name` (one of the files the wheel ships), loaded once."""
    try:
        import cv2
    except ImportError:
        raise NoDetector(f"the face yardstick needs OpenCV (cv2 is missing): pip install "
                         f"'{OPENCV}' (or the project's [audit] extra)") from None
    path = cv2.data.haarcascades + name
    found = cv2.CascadeClassifier(path)
    if found.empty():
        raise NoDetector(f"OpenCV could not load its Haar cascade {path}; install "
                         f"'{OPENCV}' (OpenCV 5 no longer ships the cascades)")
    return found


def framed(image: np.ndarray, upscale: int) -> np.ndarray:
    """image [H,W,3] uint8 RGB -> [upscale,upscale] uint8 grey with a replicated border of
    1/8 of its size: generated faces fill their frame and a cascade needs some context
    around a face."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    pad = max(1, grey.shape[0] // 8)
    grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.resize(grey, (upscale, upscale), interpolation=cv2.INTER_CUBIC)


def has_face(image: np.ndarray, upscale: int = 128) -> bool:
    """image [H,W,3] uint8 RGB -> whether a frontal face of at least a quarter of the
    picture's width is found in it, `framed` at `upscale` px."""
    detector = cascade()  # first: it says how to install OpenCV when it is missing
    found = detector.detectMultiScale(framed(image, upscale), scaleFactor=1.1, minNeighbors=4,
                                      minSize=(upscale // 4, upscale // 4))
    return len(found) > 0


def hit_rate(images: np.ndarray) -> float:
    """[N,H,W,3] uint8 -> fraction with a face."""
    return float(np.mean([has_face(im) for im in images])) if len(images) else 0.0
