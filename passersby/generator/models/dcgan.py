"""The classic DCGAN generator (Radford et al. 2015; PyTorch tutorial layout).

Parameter names (`main.N.*`) match the checkpoint in gan-face-generate 1.1.1, so its
state dict loads unchanged.
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """z [N,nz] f32 ~ N(0,I) -> image [N,nc,size,size] f32 in -1..1 (size = 64)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, size: int = 64) -> None:
        super().__init__()
        if size != 64:
            raise ValueError(f"dcgan-generator supports size 64, got {size}")
        self.nz, self.size = nz, size

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),  # -> 4x4
            nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            *up(ngf * 8, ngf * 4),  # -> 8x8
            *up(ngf * 4, ngf * 2),  # -> 16x16
            *up(ngf * 2, ngf),      # -> 32x32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # -> 64x64
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.nz, 1, 1))
