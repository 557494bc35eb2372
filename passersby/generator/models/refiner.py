"""The chain's second stage R: a 64 px portrait -> the same portrait painted at 4x.

Fully convolutional (any input size): residual blocks at the input size, then two
pixel-shuffle x2 stages, added to a bilinear upscale of the input (so an untrained
R is a plain upscaler, and training only has to learn the missing detail).
No normalisation layers: output does not depend on what else is in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    def __init__(self, nf: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.ReLU(True),
                                  nn.Conv2d(nf, nf, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Refiner(nn.Module):
    """image [N,nc,S,S] f32 -1..1 -> [N,nc,4S,4S] f32 (about -1..1; clamp to show)."""

    def __init__(self, nf: int = 32, blocks: int = 6, nc: int = 3, scale: int = 4,
                 size: int = 64) -> None:
        super().__init__()
        if scale != 4:
            raise ValueError(f"refiner supports scale 4, got {scale}")
        self.scale, self.size = scale, size
        half = max(8, nf // 2)
        self.head = nn.Conv2d(nc, nf, 3, 1, 1)
        self.body = nn.Sequential(*[ResBlock(nf) for _ in range(blocks)],
                                  nn.Conv2d(nf, nf, 3, 1, 1))
        self.up = nn.Sequential(
            nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(nf, half * 4, 3, 1, 1), nn.PixelShuffle(2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(half, nc, 3, 1, 1),
        )
        nn.init.zeros_(self.up[-1].weight)   # starts as the bilinear upscale exactly
        nn.init.zeros_(self.up[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        feat = self.head(x)
        return base + self.up(feat + self.body(feat))
