"""The image-space transform the machine applies before it reads its own picture back."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from passersby.common.config import TransformConfig


def apply(images: torch.Tensor, t: TransformConfig) -> torch.Tensor:
    """images [N,3,S,S] f32 -1..1 -> same shape: zoom/rotate/shift (reflect-padded),
    mirror, blur."""
    x = images
    if t.zoom != 1 or t.rotate_degrees or t.shift_x or t.shift_y:
        a = math.radians(t.rotate_degrees)
        c, s = math.cos(a) / t.zoom, math.sin(a) / t.zoom
        # affine_grid maps output coords to input coords (normalised -1..1)
        theta = torch.tensor([[c, -s, -2 * t.shift_x], [s, c, -2 * t.shift_y]],
                             dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)
    if t.mirror:
        x = x.flip(-1)
    if t.blur > 0:
        x = gaussian_blur(x, t.blur)
    return x


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)  # [C,1,1,K]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.transpose(2, 3), groups=x.shape[1])
