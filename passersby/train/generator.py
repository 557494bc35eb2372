"""`passersby train generator`: a GAN for the dcgan-generator on a crop dataset.

Trains from scratch, or fine-tunes an existing generator package (`init`). The
discriminator is the classic DCGAN one; losses are the non-saturating logistic ones;
G learns at half D's rate. For small datasets (a thousand crops) real and fake
pictures both go through DiffAugment (Zhao et al. 2020: colour, translation by up
to 1/8, cutout of 1/2) before D, and the data are flipped at random. The package
exported is an exponential moving average of G (sharper, steadier samples).

Every random draw of step t comes from a generator seeded by (seed, t), and the
checkpoint holds G, D, the average and both optimizers; so a run interrupted at
any point and re-run continues exactly (bit for bit on CPU). Layout of
`<weights>/<out>/`:

    manifest.json, model.safetensors, samples.png   the package (fp16 tensors)
    train/checkpoint.json                            step, time, recipe, loss history
    train/checkpoint-<step>.safetensors              G, D, average, optimizer moments
    train/samples/step-<step>.png                    8x8 grids of the average on fixed z
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from passersby import models, weights
from passersby.errors import UserError
from passersby.train import data

log = logging.getLogger(__name__)

TRAIN_DIR = "train"
SAMPLES = "samples.png"
MET_CREDIT = "Images: The Metropolitan Museum of Art, Open Access (CC0)"


class TrainError(UserError, RuntimeError):
    """A training run that cannot start or continue; the message says why and the fix."""


@dataclass(frozen=True)
class Recipe:
    """What determines the result (a checkpoint only resumes under the same recipe)."""
    batch: int = 32
    lr_g: float = 1e-4           # G moves slower than D (two time-scales)
    lr_d: float = 2e-4
    ndf: int = 32                # discriminator width
    ema: float = 0.99            # decay of the exported average of G
    seed: int = 0
    size: int = 64
    checkpoint_every: int = 50   # steps
    sample_every: int = 100      # steps


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Discriminator(nn.Module):
    """x [N,3,64,64] f32 -1..1 -> logits [N]. The classic DCGAN discriminator:
    64 -> 32 -> 16 -> 8 -> 4 -> 1, BatchNorm after every convolution but the first and last.
    (A spectral-norm variant stayed at chance against the fine-tuned stand-in, and G
    drifted into noise under its weak gradients.)"""

    def __init__(self, ndf: int = 32, nc: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in zip((nc, ndf, ndf * 2, ndf * 4), (ndf, ndf * 2, ndf * 4, ndf * 8)):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                       *([nn.BatchNorm2d(cout)] if cin != nc else []), nn.LeakyReLU(0.2)]
        self.main = nn.Sequential(*layers, nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def diff_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """DiffAugment colour + translation + cutout; x [N,3,S,S] f32 -1..1, differentiable."""
    n, _, s, _ = x.shape

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(x.device)

    x = x + (rand(n, 1, 1, 1) - 0.5)                                          # brightness
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean                            # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean                          # contrast
    pad = s // 8                                                              # translation
    shift = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen).tolist()
    xp = F.pad(x, (pad, pad, pad, pad))
    x = torch.stack([xp[i, :, dy:dy + s, dx:dx + s] for i, (dy, dx) in enumerate(shift)])
    centre = (rand(n, 2) * s).reshape(n, 2, 1, 1)                             # cutout
    grid = torch.arange(s, device=x.device, dtype=x.dtype)
    inside_y = (grid.reshape(1, s, 1) - centre[:, 0]).abs() < s / 4           # [N,S,1]
    inside_x = (grid.reshape(1, 1, s) - centre[:, 1]).abs() < s / 4           # [N,1,S]
    return x * (~(inside_y & inside_x)).unsqueeze(1).to(x.dtype)


def step_rng(seed: int, step: int) -> torch.Generator:
    """The random source of one step: a pure function of (seed, step)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (1 << 63))


class Nets:
    """G, D, the average of G and the two optimizers, built from a recipe and an init."""

    def __init__(self, recipe: Recipe, root: Path, init: str | None,
                 device: torch.device) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(recipe.seed)
            if init:
                g, m = weights.load_module(root, init, "generator")
                self.args = dict(m["args"])
                self.init = {"package": init, "tensors_sha256": m["tensors_sha256"],
                             "licence": m.get("licence", "not stated")}
            else:
                self.args = {"nz": 100, "ngf": 64, "nc": 3, "size": recipe.size}
                g, self.init = models.build("dcgan-generator", self.args), None
                g.apply(_init_weights)
            self.d = Discriminator(recipe.ndf, int(self.args["nc"])).to(device)
        if int(self.args.get("size", 64)) != recipe.size:
            raise TrainError(f"--size {recipe.size}: the generator {init or 'architecture'} "
                             f"makes {self.args.get('size')} px pictures; use --size "
                             f"{self.args.get('size')}")
        self.g = g.to(device).train()
        self.ema = copy.deepcopy(self.g).eval()
        self.opt_g = torch.optim.Adam(self.g.parameters(), recipe.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), recipe.lr_d, betas=(0.5, 0.999))

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, net in (("g", self.g), ("d", self.d), ("ema", self.ema)):
            out.update({f"{name}.{k}": v for k, v in net.state_dict().items()})
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            for i, state in opt.state_dict()["state"].items():
                out.update({f"{name}.{i}.{k}": torch.as_tensor(v) for k, v in state.items()})
        return {k: v.detach().cpu().contiguous().clone() for k, v in out.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, net in (("g", self.g), ("d", self.d), ("ema", self.ema)):
            net.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items()
                                 if k.startswith(name + ".")})
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            state: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in tensors.items():
                if k.startswith(name + "."):
                    _, i, key = k.split(".", 2)
                    state.setdefault(int(i), {})[key] = v
            opt.load_state_dict({"state": state,
                                 "param_groups": opt.state_dict()["param_groups"]})


def train_step(nets: Nets, real: torch.Tensor, recipe: Recipe, step: int) -> tuple[float, float]:
    """One D update and one G update; real [N,3,S,S] uint8 (the whole dataset, on device)."""
    gen = step_rng(recipe.seed, step)
    dev = real.device
    idx = torch.randint(0, real.shape[0], (recipe.batch,), generator=gen)
    flip = (torch.rand(recipe.batch, generator=gen) < 0.5).reshape(-1, 1, 1, 1).to(dev)
    x = real[idx.to(dev)].float() / 127.5 - 1.0                     # [B,3,S,S] f32 -1..1
    x = torch.where(flip, x.flip(3), x)
    z = torch.randn(recipe.batch, nets.g.nz, generator=gen).to(dev)
    fake = nets.g(z)                                                   # [B,3,S,S] f32 -1..1
    logits = nets.d(diff_augment(torch.cat([x, fake.detach()]), gen))
    loss_d = F.softplus(-logits[:recipe.batch]).mean() + F.softplus(logits[recipe.batch:]).mean()
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    nets.opt_d.step()
    loss_g = F.softplus(-nets.d(diff_augment(fake, gen))).mean()
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opt_g.step()
    with torch.no_grad():
        for avg, cur in zip(nets.ema.state_dict().values(), nets.g.state_dict().values()):
            avg.lerp_(cur, 1 - recipe.ema) if avg.is_floating_point() else avg.copy_(cur)
    return loss_d.item(), loss_g.item()


def _save_checkpoint(folder: Path, nets: Nets, record: dict) -> None:
    """Tensors to a new file, then the JSON naming it (atomic), then older files go."""
    name = f"checkpoint-{record['step']:07d}.safetensors"
    tmp = folder / (name + ".tmp")
    save_file(nets.tensors(), str(tmp))
    os.replace(tmp, folder / name)
    tmp = folder / "checkpoint.json.tmp"
    tmp.write_text(json.dumps({**record, "file": name}, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / "checkpoint.json")
    for old in folder.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink()


def _resume(folder: Path, nets: Nets, expect: dict) -> dict | None:
    """The checkpoint record (nets loaded from it), or None when there is none."""
    path = folder / "checkpoint.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    differs = [k for k in expect if record.get(k) != expect[k]]
    if differs:
        k = differs[0]
        raise TrainError(f"{path}: the run there was started with {k} = {record.get(k)!r}, "
                         f"this command gives {expect[k]!r}; re-run with the same options to "
                         f"continue it, or delete {folder} to start over")
    nets.load(load_file(str(folder / record["file"])))
    log.info("resuming %s at step %d", folder, record["step"])
    return record


def _sample_grid(nets: Nets, z: torch.Tensor, path: Path) -> None:
    from passersby.chain import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        pictures = to_uint8(nets.ema(z.to(next(nets.ema.parameters()).device)))
    data.write_png(path, data.grid(list(pictures)))


def train(root: Path, dataset: Path, out: str, recipe: Recipe = Recipe(),
          init: str | None = None, steps: int | None = None, minutes: float | None = None,
          device: str = "auto", progress: Callable[[dict], None] | None = None) -> dict:
    """Train (or continue) until `steps` in all or `minutes` of training in all; then
    export the package `<root>/<out>` and return its manifest."""
    from passersby.chain import pick_device

    if (steps is None) == (minutes is None):
        raise TrainError("give exactly one budget: --steps N or --minutes M")
    dev = pick_device(device)
    crops, report = data.load_crops(dataset, recipe.size)             # [N,S,S,3] uint8
    real = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(dev)
    nets = Nets(recipe, root, init, dev)
    folder = root / out / TRAIN_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainError(f"--out {out}: cannot make {folder} ({e.strerror}); check the "
                         f"weights folder (weights.dir) is writable") from None
    expect = {"recipe": asdict(recipe), "init": nets.init,
              "data_sha256": hashlib.sha256(crops.tobytes()).hexdigest()}
    record = _resume(folder, nets, expect) or {**expect, "step": 0, "elapsed_s": 0.0,
                                                "losses": [None, None], "history": []}
    z_fixed = torch.randn(64, nets.g.nz, generator=torch.Generator().manual_seed(recipe.seed + 7))
    step, elapsed, recent = record["step"], record["elapsed_s"], []
    started = time.perf_counter() - elapsed

    def save() -> None:
        if recent:
            record["losses"] = [_mean(v) for v in zip(*recent)]
        record.update(step=step, elapsed_s=elapsed)
        _save_checkpoint(folder, nets, record)

    try:
        while (step < steps) if steps is not None else (elapsed < minutes * 60):  # type: ignore[operator]
            losses = train_step(nets, real, recipe, step)
            if not all(math.isfinite(v) for v in losses):
                raise TrainError(f"step {step}: losses {losses} are not finite; change "
                                 f"the recipe (--seed-train, --batch) and delete {folder}")
            step, elapsed = step + 1, time.perf_counter() - started
            recent = (recent + [losses])[-50:]
            if step % recipe.sample_every == 0:
                _sample_grid(nets, z_fixed, folder / "samples" / f"step-{step:07d}.png")
            if step % recipe.checkpoint_every == 0:
                record["history"].append([step, round(elapsed, 1),
                                          *(_mean(v) for v in zip(*recent))])
                save()
            if progress:
                progress({"step": step, "steps": steps, "elapsed_s": elapsed,
                          "minutes": minutes, "loss_d": losses[0], "loss_g": losses[1]})
    except KeyboardInterrupt:
        save()
        raise
    save()
    _sample_grid(nets, z_fixed, root / out / SAMPLES)
    return _export(root, out, nets, record, report, dataset)


def _mean(values: tuple[float, ...]) -> float:
    return round(sum(values) / len(values), 4)


def _export(root: Path, out: str, nets: Nets, record: dict, report: dict,
            dataset: Path) -> dict:
    recipe, init = record["recipe"], nets.init
    crop = report["recipe"]
    images = (f"{crop.get('licence') or 'licence not stated'}; "
              f"{crop.get('credit') or 'no credit given'}")
    licence = (f"Fine-tuned from {init['package']}, whose licence is: {init['licence']} "
               f"These weights inherit it. Training images: {images}." if init else
               f"Trained from scratch by passersby; training images: {images}.")
    made_by = (f"passersby train generator --data {dataset} --out {out}"
               + (f" --init {init['package']}" if init else "") + f" --steps {record['step']}"
               + f" --seed {recipe['seed']} --batch {recipe['batch']}")
    manifest = {
        "kind": "generator", "arch": "dcgan-generator", "args": nets.args,
        "description": f"{recipe['size']} px generator trained by passersby on "
                       f"{report['faces']} face crops of {report['source_folder']}"
                       + (f", fine-tuned from {init['package']}" if init else ""),
        "lineage": {"init": init, "command": made_by},
        "training_data": {"dataset": dataset.name, "crops_sha256": record["data_sha256"],
                          **{k: report[k] for k in ("source_folder", "images_listed",
                                                    "images_read", "faces", "rejected")},
                          "crop_recipe": crop},
        "recipe": recipe, "steps": record["step"],
        "minutes": round(record["elapsed_s"] / 60, 2),
        "losses": {"d": record["losses"][0], "g": record["losses"][1],
                   "over": "the last (up to 50) steps trained"},
        "licence": licence, "made_by": made_by, "samples": SAMPLES,
        "fix": f"re-make it with `{made_by}`",
    }
    tensors = {k: v.half() if v.is_floating_point() else v
               for k, v in nets.ema.state_dict().items()}   # fp16: half the file, same pictures
    return weights.save_package(root, out, tensors, manifest)
