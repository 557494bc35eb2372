"""`passersby train refiner`: the chain's second stage, 64 px portrait -> 256 px painting.

Pairs come from a crop dataset made by `passersby train data --size 256`: the 256 px
crop is the target; the input is that crop degraded to 64 px at random (blur, one of
three downscalers, a small colour shift, noise, JPEG), because the generator's output
is not a clean downscaled painting and R must not learn to undo one exact filter.
Only crops whose square in the source picture was at least `min_side` px are used (a
target upscaled from a small crop is itself a blur). A fixed share of the crops (by
a hash of the file name) is held out: never trained on, used for the figures.

Training runs on aligned patches (input `patch` px, target 4x), losses: L1 on the
pixels + L1 on their high-pass (the detail the eye reads as brushwork) + after
`adv_from` steps a small hinge-GAN term from a patch discriminator with spectral
norm. Checkpoints and exact resume as in `train generator` (every draw of step t is
keyed by (seed, t)). Layout of `<weights>/<out>/`:

    manifest.json, model.safetensors, strip.png   the package (fp16) and its last strip
    train/checkpoint.json, checkpoint-<step>.safetensors, samples/step-<step>.png
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from passersby.generator import models, weights
from passersby.train import data
from passersby.train.generator import (
    TrainError,
    _resume,
    _save_checkpoint,
    check_budget,
    pack,
    run_folder,
    unpack,
)
from passersby.train.options import flag

log = logging.getLogger(__name__)

STRIP = "strip.png"


@dataclass(frozen=True)
class Recipe:
    """What determines the result (a checkpoint only resumes under the same recipe). The
    fields made with `flag` are `passersby train refiner` flags."""
    batch: int = 16
    patch: int = 32              # input patch side; the target patch is 4x
    lr: float = 2e-4
    nf: int = 32                 # refiner width
    blocks: int = 6              # residual blocks at the input size
    hf: float = 1.0              # weight of the high-pass L1
    adv: float = 0.01            # weight of the adversarial term
    adv_from: int = 600          # steps of reconstruction only before it
    min_side: int = 224          # smallest source square used as a 256 px target
    holdout: float = 0.05        # share of crops never trained on
    seed: int = flag(0, "training seed", name="seed-train")
    checkpoint_every: int = 100
    sample_every: int = 250


def degrade(target: np.ndarray, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """[S,S,3] uint8 -> [size,size,3] uint8: a random low-resolution version of it."""
    import cv2

    x = cv2.GaussianBlur(target.astype(np.float32), (0, 0), float(rng.uniform(0.3, 2.0)))
    how = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(3))]
    x = cv2.resize(x, (size, size), interpolation=how)
    x = x * rng.uniform(0.93, 1.07, 3).astype(np.float32) + float(rng.uniform(-6, 6))
    grey = x.mean(2, keepdims=True)
    x = grey + (x - grey) * float(rng.uniform(0.85, 1.15))
    if rng.random() < 0.7:
        x = x + rng.normal(0.0, rng.uniform(1.0, 6.0), x.shape).astype(np.float32)
    x = np.clip(x, 0, 255).round().astype(np.uint8)
    if rng.random() < 0.5:
        quality = int(rng.integers(40, 95))
        _, buf = cv2.imencode(".jpg", np.ascontiguousarray(x[..., ::-1]),
                              [cv2.IMWRITE_JPEG_QUALITY, quality])
        x = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(x)


def split(report: dict, recipe: Recipe) -> tuple[list[int], list[int], int]:
    """Indices of (training, held-out) crops among those large enough; how many too small."""
    train, held, small = [], [], 0
    for i, c in enumerate(report["crops"]):
        if c.get("side", c.get("crop", [0, 0, 0])[2]) < recipe.min_side:
            small += 1
            continue
        h = int(hashlib.sha256(c["file"].encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < recipe.holdout else train).append(i)
    return train, held, small


class PatchD(nn.Module):
    """x [N,3,P,P] -> a map of logits (one per ~30 px receptive field)."""

    def __init__(self, ndf: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.main = nn.Sequential(
            sn(nn.Conv2d(3, ndf, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(ndf, ndf * 2, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(ndf * 4, 1, 3, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class Nets:
    def __init__(self, recipe: Recipe, device: torch.device) -> None:
        self.args = {"nf": recipe.nf, "blocks": recipe.blocks, "nc": 3, "scale": 4, "size": 64}
        with torch.random.fork_rng():
            torch.manual_seed(recipe.seed)
            self.r = models.build("refiner", self.args).to(device).train()
            self.d = PatchD().to(device).train()
        self.opt_r = torch.optim.Adam(self.r.parameters(), recipe.lr, betas=(0.9, 0.99))
        self.opt_d = torch.optim.Adam(self.d.parameters(), recipe.lr, betas=(0.5, 0.99))

    def tensors(self) -> dict[str, torch.Tensor]:
        return pack({"r": self.r, "d": self.d}, {"opt_r": self.opt_r, "opt_d": self.opt_d})

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        unpack(tensors, {"r": self.r, "d": self.d}, {"opt_r": self.opt_r, "opt_d": self.opt_d})


def high_pass(x: torch.Tensor) -> torch.Tensor:
    return x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """[N,H,W,3] uint8 -> [N,3,H,W] f32 -1..1."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)


def batch_pairs(crops: np.ndarray, pool: list[int], recipe: Recipe,
                step: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs [B,p,p,3], targets [B,4p,4p,3]) uint8 for step `step` (pure in (seed, step))."""
    rng = np.random.default_rng([recipe.seed, step])
    p, s = recipe.patch, crops.shape[1] // 4
    xs, ys = [], []
    for i in rng.choice(pool, recipe.batch):
        target = crops[i]
        if rng.random() < 0.5:
            target = target[:, ::-1]
        small = degrade(target, rng, s)
        y0, x0 = (int(v) for v in rng.integers(0, s - p + 1, 2))
        xs.append(small[y0:y0 + p, x0:x0 + p])
        ys.append(target[4 * y0:4 * (y0 + p), 4 * x0:4 * (x0 + p)])
    return np.stack(xs), np.stack(ys)


def train_step(nets: Nets, crops: np.ndarray, pool: list[int], recipe: Recipe,
               step: int, device: torch.device) -> tuple[float, float]:
    """One update of R (and of D once adversarial); returns (loss_r, loss_d)."""
    small, big = batch_pairs(crops, pool, recipe, step)
    x, y = to_tensor(small, device), to_tensor(big, device)
    out = nets.r(x)
    loss = F.l1_loss(out, y) + recipe.hf * F.l1_loss(high_pass(out), high_pass(y))
    loss_d = 0.0
    if recipe.adv > 0 and step >= recipe.adv_from:
        d = F.relu(1 - nets.d(y)).mean() + F.relu(1 + nets.d(out.detach())).mean()
        nets.opt_d.zero_grad(set_to_none=True)
        d.backward()
        nets.opt_d.step()
        loss_d = d.item()
        loss = loss - recipe.adv * nets.d(out).mean()
    nets.opt_r.zero_grad(set_to_none=True)
    loss.backward()
    nets.opt_r.step()
    return loss.item(), loss_d


def refine(r: nn.Module, small: np.ndarray, batch: int = 16) -> np.ndarray:
    """[N,64,64,3] uint8 -> [N,256,256,3] uint8 through R."""
    from passersby.generator.chain import to_uint8

    dev = next(r.parameters()).device
    with torch.inference_mode():
        return np.concatenate([to_uint8(r(to_tensor(small[i:i + batch], dev)))
                               for i in range(0, len(small), batch)])


def bicubic(small: np.ndarray, size: int = 256) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC)
                     for im in small])


def strip(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of (input 64 | bicubic | refined [| target]): inputs shown nearest-neighbour x4."""
    out = []
    for row in rows:
        cells = [np.repeat(np.repeat(row[0], 4, 0), 4, 1), *row[1:]]
        out.append(np.concatenate(cells, 1))
    width = max(r.shape[1] for r in out)
    out = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in out]
    return np.concatenate(out, 0)


def _samples(nets: Nets, crops: np.ndarray, held: list[int], fixed: np.ndarray,
             path: Path, seed: int) -> None:
    rng = np.random.default_rng([seed, 99])
    rows = []
    for i in held[:3]:
        small = degrade(crops[i], rng)
        rows.append([small, bicubic(small[None])[0], refine(nets.r, small[None])[0], crops[i]])
    for small in fixed:
        rows.append([small, bicubic(small[None])[0], refine(nets.r, small[None])[0]])
    path.parent.mkdir(parents=True, exist_ok=True)
    data.write_png(path, strip(rows))


def generator_pictures(root: Path, name: str | None, n: int, seed: int) -> np.ndarray:
    """n pictures [n,64,64,3] uint8 of a generator package (empty when none is given)."""
    if not name:
        return np.zeros((0, 64, 64, 3), np.uint8)
    from passersby.generator.chain import to_uint8

    g, _ = weights.load_module(root, name, "generator")
    z = torch.randn(n, g.nz, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return to_uint8(g(z))


def train(root: Path, dataset: Path, out: str, recipe: Recipe = Recipe(),
          steps: int | None = None, minutes: float | None = None, device: str = "auto",
          show: str | None = None, progress: Callable[[dict], None] | None = None) -> dict:
    """Train (or continue) until `steps` or `minutes` in all; export `<root>/<out>`.

    `show`: a generator package whose pictures go into the sample strips (what R will
    really see); None = held-out crops only.
    """
    from passersby.generator.chain import pick_device

    check_budget(steps, minutes)
    dev = pick_device(device, "--device")
    crops, report = data.load_crops(dataset, 256)
    pool, held, small = split(report, recipe)
    if len(pool) < recipe.batch:
        raise TrainError(f"--data {dataset}: only {len(pool)} crops come from squares of at "
                         f"least {recipe.min_side} px in their pictures ({small} smaller); "
                         f"add larger pictures")
    nets = Nets(recipe, dev)
    folder = run_folder(root, out)
    expect = {"recipe": asdict(recipe), "kind": "refiner",
              "data_sha256": hashlib.sha256(crops.tobytes()).hexdigest()}
    record = _resume(folder, nets, expect) or {**expect, "step": 0, "elapsed_s": 0.0,
                                                "losses": [None, None], "history": []}
    fixed = generator_pictures(root, show, 5, recipe.seed + 7)
    step, elapsed, recent = record["step"], record["elapsed_s"], []
    started = time.perf_counter() - elapsed

    def save() -> None:
        if recent:
            record["losses"] = [round(float(np.mean(v)), 4) for v in zip(*recent)]
        record.update(step=step, elapsed_s=elapsed)
        _save_checkpoint(folder, nets, record)

    try:
        while (step < steps) if steps is not None else (elapsed < minutes * 60):  # type: ignore[operator]
            losses = train_step(nets, crops, pool, recipe, step, dev)
            if not all(math.isfinite(v) for v in losses):
                raise TrainError(f"step {step}: losses {losses} are not finite; change "
                                 f"the recipe (--seed-train, --batch) and delete {folder}")
            step, elapsed = step + 1, time.perf_counter() - started
            recent = (recent + [losses])[-50:]
            if step % recipe.sample_every == 0:
                _samples(nets, crops, held, fixed, folder / "samples" / f"step-{step:07d}.png",
                         recipe.seed)
            if step % recipe.checkpoint_every == 0:
                record["history"].append([step, round(elapsed, 1),
                                          *(round(float(np.mean(v)), 4) for v in zip(*recent))])
                save()
            if progress:
                progress({"step": step, "steps": steps, "elapsed_s": elapsed,
                          "minutes": minutes, "loss_r": losses[0], "loss_d": losses[1]})
    except KeyboardInterrupt:
        save()
        raise
    save()
    _samples(nets, crops, held, fixed, root / out / STRIP, recipe.seed)
    return _export(root, out, nets, record, report, dataset, len(pool), len(held), small)


def _export(root: Path, out: str, nets: Nets, record: dict, report: dict, dataset: Path,
            n_train: int, n_held: int, n_small: int) -> dict:
    recipe, crop = record["recipe"], report["recipe"]
    images = (f"{crop.get('licence') or 'licence not stated'}; "
              f"{crop.get('credit') or 'no credit given'}")
    made_by = (f"passersby train refiner --data {dataset} --out {out} --steps {record['step']}"
               f" --seed-train {recipe['seed']}")
    manifest = {
        "kind": "refiner", "arch": "refiner", "args": nets.args,
        "description": f"4x refiner (64 -> 256 px) trained by passersby from scratch on "
                       f"{n_train} face crops of {report['source_folder']}",
        "lineage": {"init": None, "command": made_by},
        "training_data": {"dataset": dataset.name, "crops_sha256": record["data_sha256"],
                          "crops_used": n_train, "held_out": n_held,
                          "smaller_than_min_side": n_small,
                          **{k: report[k] for k in ("source_folder", "images_listed",
                                                    "images_read", "faces")},
                          "crop_recipe": crop},
        "recipe": recipe, "steps": record["step"],
        "minutes": round(record["elapsed_s"] / 60, 2),
        "losses": {"r": record["losses"][0], "d": record["losses"][1],
                   "over": "the last (up to 50) steps trained"},
        "licence": f"Trained from scratch by passersby (no other network's weights); "
                   f"training images: {images}.",
        "made_by": made_by, "samples": STRIP, "fix": f"re-make it with `{made_by}`",
    }
    tensors = {k: v.half() for k, v in nets.r.state_dict().items()}
    return weights.save_package(root, out, tensors, manifest)
