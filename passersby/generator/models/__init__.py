"""Network architectures, one small file each, built from a manifest's `arch` + `args`."""
from __future__ import annotations

from torch import nn


def build(arch: str, args: dict) -> nn.Module:
    """Instantiate architecture `arch` with `args` (as recorded in a weight manifest)."""
    from passersby.generator.models.dcgan import Generator
    from passersby.generator.models.encoder import Encoder
    from passersby.generator.models.facenet import FaceResNet
    from passersby.generator.models.lite import Generator as LiteGenerator
    from passersby.generator.models.refiner import Refiner

    table = {"dcgan-generator": Generator, "lite-generator": LiteGenerator,
             "conv-encoder": Encoder,
             "refiner": Refiner, "dlib-face-resnet-v1": FaceResNet}
    if arch not in table:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(table)}")
    return table[arch](**args)
