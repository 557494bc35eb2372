"""`passersby train encoder`: teach E to read G's pictures back into G's latent space.

Each batch: z ~ N(0, I), x = G(z) (G frozen). Two losses:
- latent: |E(x) - z|^2 on the clean pictures (E inverts G on the manifold);
- picture: |G(E(T(x))) - T(x)|^2 on pictures put through random feedback
  transforms T (zoom, rotation, shift, mirror, blur within the artist's ranges), so
  that E's reading of a transformed picture is a latent whose portrait looks like
  it: the feedback then steers toward what the machine "sees", on the manifold.
Time-bounded (--minutes), deterministic given --seed, CPU or GPU.
"""
from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from passersby.common.config import TransformConfig
from passersby.generator import weights
from passersby.generator.models.encoder import Encoder
from passersby.generator.traversal import transform
from passersby.train.options import flag

log = logging.getLogger(__name__)


@dataclass
class Recipe:
    """The fields made with `flag` are `passersby train encoder` flags."""
    minutes: float = flag(8.0, "training time in all")
    batch: int = 48
    picture_batch: int = 16      # of the batch, how many also get the picture loss
    lr: float = 2e-3
    picture_weight: float = 4.0
    seed: int = flag(0, "training seed", name="seed-train")
    ndf: int = 32


def random_transform(r: random.Random) -> TransformConfig:
    return TransformConfig(zoom=r.uniform(0.9, 1.15), rotate_degrees=r.uniform(-8, 8),
                           shift_x=r.uniform(-0.05, 0.05), shift_y=r.uniform(-0.05, 0.05),
                           mirror=r.random() < 0.5, blur=r.choice([0.0, 0.0, 0.5, 1.0]))


def evaluate(g: torch.nn.Module, e: torch.nn.Module, n: int = 256, seed: int = 1) -> dict:
    """Held-out figures: latent cosine and picture error of G(E(G(z))) vs G(z)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        z = torch.randn(n, g.nz, generator=gen)
        x = g(z)
        zh = e(x)
        cos = F.cosine_similarity(zh, z, dim=1).mean().item()
        rec = F.mse_loss(g(zh), x).item()
        base = F.mse_loss(g(torch.randn(n, g.nz, generator=gen)), x).item()
    return {"latent_cosine": round(cos, 4), "picture_mse": round(rec, 4),
            "random_pair_mse": round(base, 4)}


def train(root: Path, generator: str, out: str, recipe: Recipe,
          progress: Callable[[str], None] = print) -> dict:
    torch.manual_seed(recipe.seed)
    r = random.Random(recipe.seed)
    g, gm = weights.load_module(root, generator, "generator")
    for p in g.parameters():
        p.requires_grad_(False)
    nz = int(gm["args"]["nz"])
    e = Encoder(nz=nz, ndf=recipe.ndf)
    opt = torch.optim.Adam(e.parameters(), lr=recipe.lr, betas=(0.5, 0.99))
    budget, start, step = recipe.minutes * 60.0, time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < budget:
        for group in opt.param_groups:  # cosine decay over the time budget
            group["lr"] = recipe.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        z = torch.randn(recipe.batch, nz)
        with torch.no_grad():
            x = g(z)  # [B,3,64,64] f32 -1..1
            k = recipe.picture_batch
            xt = torch.cat([transform.apply(x[i:i + 1], random_transform(r)) for i in range(k)])
        loss_z = F.mse_loss(e(x), z)
        loss_x = F.mse_loss(g(e(xt)), xt)
        loss = loss_z + recipe.picture_weight * loss_x
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            progress(f"step {step:5d}  {elapsed / 60:4.1f}/{recipe.minutes:.1f} min  "
                     f"latent {loss_z.item():.3f}  picture {loss_x.item():.4f}")
    e.eval()
    figures = evaluate(g, e)
    progress(f"held-out: {figures}")
    manifest = {
        "kind": "encoder", "arch": "conv-encoder",
        "args": {"nz": nz, "ndf": recipe.ndf, "nc": 3, "size": 64},
        "description": f"Feedback encoder for {generator}: picture -> latent.",
        "generator": generator, "generator_tensors_sha256": gm["tensors_sha256"],
        "recipe": vars(recipe), "steps": step, "figures": figures,
        "licence": f"Derived from {generator}; inherits its licence: {gm.get('licence', '?')}",
        "made_by": f"passersby train encoder --weights {generator} --out {out} "
                   f"--minutes {recipe.minutes} --seed-train {recipe.seed}",
        "fix": f"re-train it with `passersby train encoder --weights {generator}`",
    }
    tensors = {k: v.half() for k, v in e.state_dict().items()}  # fp16: a small file to commit
    return weights.save_package(root, out, tensors, manifest)
