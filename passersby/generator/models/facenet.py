"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) in torch.

The network is `anet_type` of dlib's examples/dnn_face_recognition_ex.cpp, layer for
layer, so that its weights (converted by passersby.train.facenet_convert) give the same
128-d descriptors as dlib's `compute_face_descriptor(chip)` without dlib at run time:

- input_rgb_image_sized<150>: (pixel - channel mean) / 256;
- con<32,7,7,2,2>, affine, relu, max_pool<3,3,2,2>: dlib pads a convolution or a pool
  only when its stride is 1 (by half the window), so these two are unpadded;
- 14 residual blocks, each conv 3x3 (stride 1 or 2) -> affine -> relu -> conv 3x3 ->
  affine, added to the block's input (avg_pool<2,2,2,2> of it where the block
  downsamples), then relu. dlib's add_prev sums tensors of different shapes by
  zero-filling both to the larger size from the top-left corner, which happens twice:
  more filters than the input's, and 3x3 blocks added to 4x4 pooled inputs (8 -> 3 by
  an unpadded stride-2 conv, 8 -> 4 by the pool);
- avg_pool_everything, fc_no_bias<128>: the descriptor (loss_metric passes it on as is).

`affine` is batch norm frozen to a per-channel scale and shift.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHIP = 150
MEAN_RGB = (122.782, 117.001, 104.298)
# (filters, blocks, whether the first block downsamples), from the input on:
# dlib's alevel4, alevel3, alevel2, alevel1, alevel0.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def blocks() -> list[tuple[int, int, bool]]:
    """(input filters, filters, downsamples) of each residual block, from the input on."""
    out, cin = [], 32
    for filters, count, down in STAGES:
        for i in range(count):
            out.append((cin, filters, down and i == 0))
            cin = filters
    return out


class Affine(nn.Module):
    """dlib's affine_ in CONV_MODE: x * scale[c] + shift[c]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift[:, None, None], x, self.scale[:, None, None])


def add_zero_filled(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: a + b, each zero-filled (at the end of channels, rows, columns)
    to the larger of the two shapes."""
    if a.shape == b.shape:
        return a + b
    size = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def fill(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, size[2] - w, 0, size[1] - h, 0, size[0] - c))

    return fill(a) + fill(b)


class Residual(nn.Module):
    """dlib's ares / ares_down: relu(block(x) + skip(x))."""

    def __init__(self, cin: int, filters: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, filters, 3, 2 if down else 1, 0 if down else 1)
        self.bn1 = Affine(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1)
        self.bn2 = Affine(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(add_zero_filled(y, F.avg_pool2d(x, 2, 2) if self.down else x))


class FaceResNet(nn.Module):
    """chips [N,3,150,150] RGB 0..255 (uint8, or float holding those values) ->
    descriptors [N,128] f32 (dlib's; two photos of one person are usually < 0.6 apart)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB))
        self.conv = nn.Conv2d(3, 32, 7, 2, 0)
        self.bn = Affine(32)
        self.blocks = nn.Sequential(*(Residual(*b) for b in blocks()))
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.dim() != 4 or tuple(chips.shape[1:]) != (3, CHIP, CHIP):
            raise ValueError(f"chips must be [N,3,{CHIP},{CHIP}], got {list(chips.shape)}")
        x = (chips.to(self.mean.dtype) - self.mean[:, None, None]) / 256
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 3, 2)
        return self.fc(self.blocks(x).mean((2, 3)))
