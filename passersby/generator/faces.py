"""A face detector used as a yardstick (audit, tests): OpenCV's frontal-face Haar cascade.

Optional: needs `opencv-python-headless<5` (the `audit` extra); OpenCV 5 dropped the
cascades from the wheel.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _cascade():  # type: ignore[no-untyped-def]
    try:
        import cv2
    except ImportError:
        raise RuntimeError("the face yardstick needs OpenCV: pip install "
                           "'opencv-python-headless<5' (or the project's [audit] extra)") from None
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load its Haar cascade {path}; "
                           "install 'opencv-python-headless<5'")
    return cascade


def has_face(image: np.ndarray, upscale: int = 128) -> bool:
    """image [H,W,3] uint8 RGB -> whether a frontal face of at least a quarter of the
    picture's width is found. Generated faces fill their frame, so the picture gets a
    replicated border of 1/8 of its size (the cascade needs some context around a
    face) and is upscaled to `upscale` px."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    pad = max(1, grey.shape[0] // 8)
    grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    grey = cv2.resize(grey, (upscale, upscale), interpolation=cv2.INTER_CUBIC)
    found = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4,
                                        minSize=(upscale // 4, upscale // 4))
    return len(found) > 0


def hit_rate(images: np.ndarray) -> float:
    """[N,H,W,3] uint8 -> fraction with a face."""
    return float(np.mean([has_face(im) for im in images])) if len(images) else 0.0
