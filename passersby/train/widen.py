"""Widen a trained light generator (models/lite.py) without changing its pictures
(Net2WiderNet, Chen et al. 2016): each new channel copies an old one, and the layers that
read a copied channel split their weight between the copies, so that the wider G makes
the same pictures (BatchNorm running statistics copied, eval mode: exactly, up to float
sums). A little noise on the copies' own weights lets them part once training goes on
(copies with equal weights would get equal gradients and stay copies forever).

`passersby train generator --init PACKAGE --widen NGF` starts a run from the widened G:
the crowd keeps what it learned, the run trains the extra width.
"""
from __future__ import annotations

import torch
from torch import nn

from passersby.generator.models import lite


def _mapping(old: int, new: int, gen: torch.Generator) -> torch.Tensor:
    """new -> old channel index: the first `old` are themselves, the rest random copies."""
    extra = torch.randint(0, old, (new - old,), generator=gen)
    return torch.cat([torch.arange(old), extra])


def _glu_out(t: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """A GLU layer's output dim holds values then gates (2 x C): copy both halves by m."""
    half = t.shape[dim] // 2
    return torch.cat([t.index_select(dim, m), t.index_select(dim, m + half)], dim)


def _split_in(t: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """Input channels read through m, each divided by how many copies its old one has."""
    count = torch.bincount(m, minlength=t.shape[dim]).to(t.dtype)
    shape = [1] * t.dim()
    shape[dim] = len(m)
    return t.index_select(dim, m) / count[m].reshape(shape)


def _copy_bn(new: nn.BatchNorm2d, old: nn.BatchNorm2d, m: torch.Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name).copy_(_glu_out(getattr(old, name), m, 0))


def _channels(g: lite.Generator, r: int) -> int:
    """G's channels at resolution r (the GLU halves its convolution's output)."""
    conv = g.start[0].weight if r == 4 else g.ups[r.bit_length() - 4][1].weight
    return conv.shape[1 if r == 4 else 0] // 2


def widen(g: lite.Generator, ngf: int, noise: float = 0.01, seed: int = 0) -> lite.Generator:
    """A copy of the light G `g` at width ngf (>= its own) making the same pictures; noise:
    std of the copies' weight jitter, relative to each weight tensor's std (0: exact)."""
    if not isinstance(g, lite.Generator):
        raise ValueError(f"widen: only the light generator (models/lite.py) widens, not "
                         f"{type(g).__name__}")
    old_ngf = g.start[0].weight.shape[1] // 16          # 4x4 holds 8 x ngf channels
    if ngf < old_ngf:
        raise ValueError(f"widen: width {ngf} is narrower than the generator's {old_ngf}")
    w = lite.Generator(nz=g.nz, ngf=ngf, nc=g.rgb[0].weight.shape[0], size=g.size)
    gen = torch.Generator().manual_seed(seed)
    res = [4 * 2 ** k for k in range(g.size.bit_length() - 2)]
    m = {r: _mapping(_channels(g, r), _channels(w, r), gen) for r in res}
    fresh = {r: torch.arange(len(m[r])) >= _channels(g, r) for r in res}   # the new copies
    copied: list[tuple[torch.Tensor, int, torch.Tensor]] = []    # (weight, out dim, copies)
    with torch.no_grad():
        w.start[0].weight.copy_(_glu_out(g.start[0].weight, m[4], 1))
        copied.append((w.start[0].weight, 1, fresh[4].repeat(2)))
        _copy_bn(w.start[1], g.start[1], m[4])
        for i, r in enumerate(res[1:]):
            conv_new, conv_old = w.ups[i][1], g.ups[i][1]
            conv_new.weight.copy_(_glu_out(_split_in(conv_old.weight, m[r // 2], 1), m[r], 0))
            copied.append((conv_new.weight, 0, fresh[r].repeat(2)))
            _copy_bn(w.ups[i][2], g.ups[i][2], m[r])
        for key, ex in w.excite.items():
            r, old = int(key), g.excite[key].gate
            ex.gate[1].weight.copy_(_split_in(old[1].weight, m[r // 8], 1).index_select(0, m[r]))
            ex.gate[3].weight.copy_(_split_in(old[3].weight, m[r], 1).index_select(0, m[r]))
            copied += [(ex.gate[1].weight, 0, fresh[r]), (ex.gate[3].weight, 0, fresh[r])]
        w.rgb[0].weight.copy_(_split_in(g.rgb[0].weight, m[g.size], 1))
        w.rgb[0].bias.copy_(g.rgb[0].bias)
        for t, dim, copies in copied if noise > 0 else []:
            shape = [1] * t.dim()
            shape[dim] = len(copies)
            jitter = torch.randn(t.shape, generator=gen) * noise * float(t.std())
            t.add_(jitter * copies.to(t.dtype).reshape(shape))
    return w
