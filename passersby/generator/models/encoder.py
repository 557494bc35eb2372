"""The feedback encoder E: portrait -> latent, trained by `passersby train encoder`."""
from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """image [N,nc,size,size] f32 -1..1 -> z [N,nz] f32 (an estimate of G's input)."""

    def __init__(self, nz: int = 100, ndf: int = 32, nc: int = 3, size: int = 64) -> None:
        super().__init__()
        if size != 64:
            raise ValueError(f"conv-encoder supports size 64, got {size}")
        self.nz = nz

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1), nn.GroupNorm(8, cout), nn.LeakyReLU(0.2, True)]

        self.features = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 32x32
            *down(ndf, ndf * 2),         # 16x16
            *down(ndf * 2, ndf * 4),     # 8x8
            *down(ndf * 4, ndf * 8),     # 4x4
        )
        self.head = nn.Linear(ndf * 8 * 16, nz)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))
