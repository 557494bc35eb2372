"""Coverage beside the GAN loss: implicit maximum likelihood (IMLE, Li & Malik 2018).

A GAN may drop sitters: against the projected discriminator a DCGAN G collapsed to one
face for every z within 400 steps, with or without BatchNorm in D's heads. IMLE turns
the question around: every crop must have a picture of G near it. Every `every` steps
(one pass over the crops by default) a pool of latents is drawn, G's pictures of them
are read in a perceptual space, and each crop is given the latent whose picture lies
nearest to it; each training step then pulls G's pictures of the batch's crops' latents
toward those crops (`Recipe.imle`, its weight beside the adversarial loss, or alone:
`d_arch: none`). With `imle_keep` each search also weighs the crops' current latents,
as Adaptive IMLE (Aghabozorgi et al. 2023) keeps each data point's progress. A G that
makes one face for every z is then far from most crops, and the term grows with the
crops it leaves out.

The space (`Space`): EfficientNet-Lite0 (frozen, ImageNet; the projected D's backbone,
not the yardsticks' Lite2 or face descriptor) at 64 px, its first three levels (strides
4, 8, 16), each feature unit-normalised over channels per position (as LPIPS does), and
the picture itself at 16x16 for the palette. Parts are scaled so that the squared
distance of two pictures is the sum over the four parts of their mean squared
difference. With `face` F > 0 the face square (the aligned crops' chip, where the eyes,
nose and mouth are; generator/identity.CHIP) is read again at 64 px through the same
three levels, each part weighed F: the adversary makes faces typical, and this asks each
crop's picture to keep its own face, not only its layout and palette. (The face network
of the identity yardstick is not used: a yardstick must not be trained on.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from passersby.generator.identity import CHIP

LEVELS = ((0, 3), (3, 5), (5, 11))                 # EfficientNet-Lite0 blocks per level


class Space(nn.Module):
    """x [N,3,S,S] f32 -1..1 -> [N,D] f32; |a - b|^2 is the perceptual distance."""

    def __init__(self, face: float = 0.0) -> None:
        super().__init__()
        from passersby.train import projected

        if not 0 <= face < 100:
            raise ValueError(f"face weight {face}: use 0 (none) to < 100")
        net, _ = projected.load_backbone()
        self.__dict__["net"] = net                     # frozen, outside the module tree
        self.face = face

    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [N,3,64,64] -> the three levels, unit-normalised over channels, flattened."""
        net, parts = self.net, []
        h = net._swish(net._bn0(net._conv_stem(x)))
        for lo, hi in LEVELS:
            for block in net._blocks[lo:hi]:
                h = block(h)
            parts.append((h / (h.square().sum(1, keepdim=True).sqrt() + 1e-6)).flatten(1))
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[-1]
        whole = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        parts = [F.adaptive_avg_pool2d(whole, 16).flatten(1), *self._levels(whole)]
        out = [p / p.shape[1] ** 0.5 for p in parts]
        if self.face > 0:
            left, top, side = (round(f * s) for f in CHIP)
            chip = F.interpolate(x[:, :, top:top + side, left:left + side], size=(64, 64),
                                 mode="bilinear", align_corners=False)
            out += [p * (self.face / p.shape[1]) ** 0.5 for p in self._levels(chip)]
        return torch.cat(out, 1)

    def to(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.__dict__["net"] = self.net.to(*args, **kwargs)
        return super().to(*args, **kwargs)


def nearest(g: nn.Module, space: Space, real: torch.Tensor, pool: int,
            gen: torch.Generator, chunk: int = 64, keep: torch.Tensor | None = None,
            unique: bool = False) -> torch.Tensor:
    """For each crop's features (real [N,D]) the latent [N,nz] among `pool` drawn from
    `gen` whose picture by `g` is nearest to it; with `keep` (the last search's latents
    [N',nz]) those are candidates too, so a crop keeps its latent until a fresh one
    beats it (a crop that found its picture does not lose it to an unlucky draw). With
    `unique` no latent goes to two crops (`assign_unique`): G cannot answer several
    crops with one picture pulled toward their average."""
    dev = real.device
    latents = torch.randn(pool, g.nz, generator=gen).to(dev)
    if keep is not None:
        latents = torch.cat([latents, keep.to(dev)])
    if unique and latents.shape[0] < real.shape[0]:
        raise ValueError(f"{latents.shape[0]} candidate latents for {real.shape[0]} crops: "
                         "a one-to-one search needs at least one per crop")
    rr = real.square().sum(1)
    parts = []
    with torch.no_grad():
        for start in range(0, latents.shape[0], chunk):
            f = space(g(latents[start:start + chunk]))
            parts.append(rr[:, None] + f.square().sum(1)[None] - 2 * real @ f.T)
    d = torch.cat(parts, 1)                                               # [N, pool]
    return latents[assign_unique(d) if unique else d.argmin(1)]


def assign_unique(d: torch.Tensor) -> torch.Tensor:
    """For a distance matrix d [N crops, P latents] (P >= N) a latent index per crop, no
    index twice: the greedy matching, pairs taken nearest first, a pair skipped when its
    crop or latent is taken. Found in rounds: every pair that is the nearest free one of
    both its crop and its latent is taken (it would be taken by the greedy walk too),
    so a round costs one pass over the matrix, not one per pair."""
    d = d.clone()
    pick = torch.full((d.shape[0],), -1, dtype=torch.long, device=d.device)
    todo = torch.arange(d.shape[0], device=d.device)
    while todo.numel():
        sub = d[todo]
        dist, j = sub.min(1)                         # each crop's nearest free latent
        cand = dist == sub.min(0).values[j]          # ... and that latent's nearest crop
        pos = torch.arange(todo.numel(), device=d.device)
        first = torch.full((d.shape[1],), todo.numel(), dtype=torch.long, device=d.device)
        first = first.scatter_reduce(0, j[cand], pos[cand], "amin")   # ties: lower crop
        win = cand & (first[j] == pos)
        pick[todo[win]] = j[win]
        d[:, j[win]] = float("inf")
        todo = todo[~win]
    return pick


def loss(space: Space, fake: torch.Tensor, real_features: torch.Tensor) -> torch.Tensor:
    """Mean squared perceptual distance of G's pictures to their crops."""
    return (space(fake) - real_features).square().sum(1).mean()
