"""A light generator after FastGAN's (Liu et al. 2021, the G Projected GAN pairs with):
nearest-neighbour upsampling and 3x3 convolutions with gated linear units instead of
transposed convolutions (no checkerboard), and skip-layer excitation: the 4x4 and 8x8
features gate the channels of the 32x32 and 64x64 ones (what is coarse decides the
style of what is fine). FastGAN's noise injection is left out: a latent makes one
picture, so that the stream replays exactly.
"""
from __future__ import annotations

import torch
from torch import nn


def _up(cin: int, cout: int) -> nn.Sequential:
    """x2 nearest, 3x3 convolution to 2 x cout, BatchNorm, GLU -> cout channels."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(cin, cout * 2, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(cout * 2), nn.GLU(1))


class _Excite(nn.Module):
    """Skip-layer excitation: a coarse feature -> one gate in 0..1 per fine channel."""

    def __init__(self, coarse: int, fine: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4),
                                  nn.Conv2d(coarse, fine, 4, 1, 0, bias=False), nn.SiLU(),
                                  nn.Conv2d(fine, fine, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return fine * self.gate(coarse)


class Generator(nn.Module):
    """z [N,nz] f32 ~ N(0,I) -> image [N,nc,size,size] f32 in -1..1 (size 64, 128 or 256).
    Channels halve at each doubling: 8 x ngf at 4x4 ... ngf / 2 at 64x64."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, size: int = 64) -> None:
        super().__init__()
        if size not in (64, 128, 256):
            raise ValueError(f"lite-generator supports size 64, 128 or 256, got {size}")
        self.nz, self.size = nz, size
        res = [4 * 2 ** k for k in range(size.bit_length() - 2)]          # 4, 8, ... size
        ch = {r: max(8, ngf * 8 * 4 // r) for r in res}
        self.start = nn.Sequential(nn.ConvTranspose2d(nz, ch[4] * 2, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch[4] * 2), nn.GLU(1))
        self.ups = nn.ModuleList(_up(ch[r // 2], ch[r]) for r in res[1:])
        # the 4x4 features gate the 32x32 ones, the 8x8 the 64x64, the 16x16 the 128x128
        self.excite = nn.ModuleDict({str(r): _Excite(ch[r // 8], ch[r]) for r in res if r >= 32})
        self.rgb = nn.Sequential(nn.Conv2d(ch[size], nc, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.start(z.reshape(z.shape[0], self.nz, 1, 1))
        seen = {4: h}
        for up in self.ups:
            h = up(h)
            r = h.shape[-1]
            if str(r) in self.excite:
                h = self.excite[str(r)](seen[r // 8], h)
            seen[r] = h
        return self.rgb(h)
