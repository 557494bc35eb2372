"""`passersby train generator`: a generator (dcgan or lite) on a crop dataset, by a GAN,
by the IMLE coverage term (`imle`), or by the coverage term alone (`d_arch: none`).

Trains from scratch, or fine-tunes an existing generator package (`init`). Losses
are the non-saturating logistic ones. For small datasets (a thousand crops) real and
fake pictures both go through DiffAugment (Zhao et al. 2020: colour, translation by
up to 1/8, cutout of 1/2) before D, and the data are flipped at random. The package
exported is an exponential moving average of G (sharper, steadier samples).

Two recipes (`Recipe`), the second made of options of the first:
- classic (the defaults): the DCGAN discriminator (BatchNorm), every layer of G
  trained with batch statistics, augmentation always on. Fine-tuning the stand-in
  on 1,000 paintings this way breaks its faces within a few hundred steps (D, from
  scratch, overpowers G).
- fine-tune (`g_params="bn"` or `freeze_g`, `anchor`, `d_norm="none"`, `r1`, `ada`,
  `d_warmup`): of G only the BatchNorm scales and shifts train (`g_params="bn"`, as in
  batch-statistics adaptation, Noguchi & Harada 2019), or its first `freeze_g`
  transposed convolutions are frozen (FreezeG, Mo et al. 2020); either way every
  BatchNorm keeps its running statistics (eval mode: a sample does not depend on its
  batch), so the face geometry stays the init's. `anchor` pulls G's pictures toward
  the init's in a palette-free space (16x16 normalised luminance), so that D cannot
  push G into blotches where the init has features the data lack (the stand-in's
  open mouths). D has no normalisation and is held back by an R1 penalty on the
  reals (Mescheder et al. 2018; lazy, every `r1_every` steps) and ADA-style adaptive
  augmentation (Karras et al. 2020): each augmentation is applied to a picture with
  probability p, and p moves every `ada_interval` steps to hold r_t =
  E[sign(D(real))] near `ada_target`. D trains alone for the first `d_warmup` steps
  (a D from scratch is fooled by tiny changes; G's first gradients would be noise).

Every random draw of step t comes from a generator seeded by (seed, t), and the
checkpoint holds G, D, the average and both optimizers; so a run interrupted at
any point and re-run continues exactly (bit for bit on CPU). Layout of
`<weights>/<out>/`:

    manifest.json, model.safetensors, samples.png   the package (fp16 tensors)
    train/checkpoint.json                            step, time, recipe, loss history, ADA
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
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from passersby.common.errors import UserError
from passersby.common.folders import writable_folder
from passersby.generator import models, weights
from passersby.train import data
from passersby.train.options import flag

log = logging.getLogger(__name__)

TRAIN_DIR = "train"
SAMPLES = "samples.png"
MET_CREDIT = "Images: The Metropolitan Museum of Art, Open Access (CC0)"


class TrainError(UserError, RuntimeError):
    """A training run that cannot start or continue; the message says why and the fix."""


@dataclass(frozen=True)
class Recipe:
    """What determines the result (a checkpoint only resumes under the same recipe). The
    fields made with `flag` are `passersby train generator` flags."""
    batch: int = flag(32, "batch size")
    lr_g: float = flag(1e-4, "G's learning rate")  # G moves slower than D (two time-scales)
    lr_d: float = flag(2e-4, "D's learning rate")
    ndf: int = flag(32, "discriminator width (projected: the heads' width)")
    ngf: int = flag(64, "from scratch: the generator's width (--init keeps the init's; "
                        "--widen widens it)")
    g_arch: str = flag("dcgan", "from scratch: the generator, dcgan (transposed convolutions) "
                                "or lite (models/lite.py: nearest upsampling, 3x3 convolutions, "
                                "skip-layer excitation; no checkerboard)",
                       choices=("dcgan", "lite"))
    ema: float = flag(0.99, "decay of the exported average of G")
    ema_rampup: float = flag(0.0, "the average's half-life is at most R x the steps trained "
                                  "(StyleGAN2-ADA's ema_rampup, e.g. 0.05: early on the average "
                                  "follows G; default {default}: the fixed --ema)", metavar="R")
    seed: int = flag(0, "training seed", name="seed-train")
    size: int = flag(64, "picture size", choices=(64, 128, 256))
    checkpoint_every: int = 50   # steps
    sample_every: int = 100      # steps
    freeze_g: int = flag(0, "freeze G's first N of 5 layers and all its BatchNorm statistics "
                            "(FreezeG; 3 trains only the 16->32 block and the last layer)",
                         metavar="N")
    d_norm: str = flag("batch", "discriminator normalisation", choices=("batch", "none"))
    r1: float = flag(0.0, "R1 gradient penalty on the reals (default {default}: none)",
                     metavar="GAMMA")
    r1_every: int = flag(16, "lazy R1, every K steps (scaled by K)", metavar="K")
    ada: bool = flag(False, "adaptive augmentation probability (default: always on)")
    ada_target: float = flag(0.6, "the E[sign(D(real))] ADA holds")
    ada_interval: int = 4        # steps between adjustments of p
    ada_speed: int = 500         # steps p needs to go from 0 to 1
    d_warmup: int = flag(0, "the first N steps train D only (G, its average untouched)",
                         metavar="N")
    g_params: str = flag("all", "of G's unfrozen layers train all parameters or only the "
                                "BatchNorm scales and shifts (statistics frozen)",
                         choices=("all", "bn"))
    anchor: float = flag(0.0, "weight of a pull toward the --init's picture structure "
                              "(16x16 normalised luminance; the palette is free)", metavar="W")
    d_arch: str = flag("dcgan", "the discriminator: dcgan (logistic loss), projected "
                                "(heads on frozen EfficientNet-Lite0 features, train/projected.py; "
                                "hinge loss; needs the [train] extra) or none (no adversary: "
                                "G learns from the coverage term alone, --imle W > 0)",
                       choices=("dcgan", "projected", "none"))
    d_size: int = flag(128, "projected D: the size pictures are read at", metavar="PX")
    beta1: float = flag(0.5, "Adam's beta1 (first-moment decay), both networks")
    imle: float = flag(0.0, "weight of the coverage term (IMLE, train/imle.py: every crop "
                            "pulls the nearest of G's pictures toward it, in "
                            "EfficientNet-Lite0 features; needs the [train] extra; default "
                            "{default}: none)", metavar="W")
    imle_pool: int = flag(2048, "--imle: latents drawn per search (to find each crop's "
                                "nearest picture)", metavar="N")
    imle_keep: bool = flag(False, "--imle: each search weighs the crops' current latents "
                                  "beside the fresh pool (a crop keeps its latent until a "
                                  "fresh one is nearer)")
    imle_unique: bool = flag(False, "--imle: no latent goes to two crops (greedy, nearest "
                                    "pairs first), so G cannot answer several crops with "
                                    "one picture pulled toward their average")
    imle_learn: float = flag(0.0, "--imle: also learn the crops' latents (GLO, Bojanowski "
                                  "et al. 2018) at this rate: each crop keeps the latent of "
                                  "the first search and moves it toward its crop beside G; "
                                  "the shipped G folds their spread into its first layer, so "
                                  "z ~ N(0,I) samples it (default {default}: searched only)",
                             metavar="LR")
    imle_every: int = flag(0, "--imle: steps between searches (default {default}: one pass "
                              "over the crops)", metavar="K")
    imle_face: float = flag(0.0, "--imle: the face square read again at 64 px in the "
                                 "coverage space, each of its parts weighed F (train/imle.py; "
                                 "default {default}: the whole picture only)", metavar="F")
    fake_latents: str = flag("normal", "the adversary's fakes: G(z), z ~ N(0,I), or (learned, "
                                       "with --imle-learn) G(L z), L the learned latents' "
                                       "Cholesky factor: the spread the shipped G samples",
                             choices=("normal", "learned"))
    mode_seeking: float = flag(0.0, "weight of a spread term (mode seeking, Mao et al. 2019): "
                                    "the adversary's fakes in pairs of independent latents, "
                                    "each pair pushed apart in the coverage space (--imle's) "
                                    "the harder the closer (1 / (distance over the crops' "
                                    "median + 0.1)); default {default}: none", metavar="W")
    widen: int = flag(0, "with --init of a light G: start from it widened to this --ngf, making "
                         "the same pictures (train/widen.py; default {default}: its own width)",
                      metavar="NGF")


DEFAULTS = asdict(Recipe())
ARCHS = {"dcgan": "dcgan-generator", "lite": "lite-generator"}   # --g-arch -> manifest arch
# command-line flag -> Recipe field, for the manifest's command line beyond batch/seed/size
RECIPE_FLAGS = tuple((f.metadata["flag"] or f.name.replace("_", "-"), f.name)
                     for f in fields(Recipe) if "help" in f.metadata
                     and f.name not in ("batch", "seed", "size"))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Discriminator(nn.Module):
    """x [N,3,64,64] f32 -1..1 -> logits [N]. The classic DCGAN discriminator:
    64 -> 32 -> 16 -> 8 -> 4 -> 1, BatchNorm after every convolution but the first and last
    (norm "batch"), or no normalisation and biases instead (norm "none", for R1: a
    logit that depends only on its own picture).
    (A spectral-norm variant stayed at chance against the fine-tuned stand-in, and G
    drifted into noise under its weak gradients.)"""

    def __init__(self, ndf: int = 32, nc: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "none"):
            raise TrainError(f"discriminator norm {norm!r}: use 'batch' or 'none'")
        bn = norm == "batch"
        layers: list[nn.Module] = []
        for cin, cout in zip((nc, ndf, ndf * 2, ndf * 4), (ndf, ndf * 2, ndf * 4, ndf * 8)):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=not bn),
                       *([nn.BatchNorm2d(cout)] if bn and cin != nc else []),
                       nn.LeakyReLU(0.2)]
        self.main = nn.Sequential(*layers, nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=not bn))
        self.apply(_init_weights)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def diff_augment(x: torch.Tensor, gen: torch.Generator, p: float = 1.0) -> torch.Tensor:
    """DiffAugment colour + translation + cutout; x [N,3,S,S] f32 -1..1, differentiable.
    With p < 1 (ADA) each of the five (brightness, saturation, contrast, translation,
    cutout) is applied to each picture with probability p; p = 1 draws exactly what
    the classic recipe always drew."""
    n, _, s, _ = x.shape

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(x.device)

    gate = (torch.rand(5, n, generator=gen) < p).to(x.device) if p < 1 else None

    def on(k: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a where augmentation k applies to the picture, else b."""
        return a if gate is None else torch.where(gate[k].reshape(n, 1, 1, 1), a, b)

    x = on(0, x + (rand(n, 1, 1, 1) - 0.5), x)                                # brightness
    mean = x.mean(1, keepdim=True)
    x = on(1, (x - mean) * (rand(n, 1, 1, 1) * 2) + mean, x)                  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = on(2, (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean, x)                # contrast
    pad = s // 8                                                              # translation
    shift = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    if gate is not None:
        shift = torch.where(gate[3].cpu().reshape(n, 1), shift, pad)
    xp = F.pad(x, (pad, pad, pad, pad))
    x = torch.stack([xp[i, :, dy:dy + s, dx:dx + s]
                     for i, (dy, dx) in enumerate(shift.tolist())])
    centre = (rand(n, 2) * s).reshape(n, 2, 1, 1)                             # cutout
    grid = torch.arange(s, device=x.device, dtype=x.dtype)
    inside_y = (grid.reshape(1, s, 1) - centre[:, 0]).abs() < s / 4           # [N,S,1]
    inside_x = (grid.reshape(1, 1, s) - centre[:, 1]).abs() < s / 4           # [N,1,S]
    cut = (inside_y & inside_x).unsqueeze(1)                                  # [N,1,S,S]
    if gate is not None:
        cut = cut & gate[4].reshape(n, 1, 1, 1)
    return x * (~cut).to(x.dtype)


def _discriminator(recipe: Recipe, nc: int) -> nn.Module | None:
    if recipe.d_arch == "none":
        if recipe.imle <= 0:
            raise TrainError("--d-arch none trains G from the coverage term alone: give "
                             "--imle W (W > 0, e.g. 1.0), or choose a discriminator")
        return None
    if recipe.d_arch == "dcgan":
        return Discriminator(recipe.ndf, nc, recipe.d_norm)
    if recipe.d_arch != "projected":
        raise TrainError(f"--d-arch {recipe.d_arch!r}: use 'dcgan' or 'projected'")
    if recipe.d_size not in (64, 96, 128, 160, 192, 224, 256):
        raise TrainError(f"--d-size {recipe.d_size}: use a multiple of 32 within 64..256 "
                         f"(128: the lean default)")
    from passersby.train import projected

    try:
        return projected.ProjectedDiscriminator(recipe.d_size, max(recipe.ndf, 32), recipe.seed,
                                                batchnorm=recipe.d_norm == "batch")
    except projected.BackboneUnavailable as e:
        raise TrainError(str(e)) from None


def d_losses(recipe: Recipe, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss from its logits on reals and fakes: logistic (dcgan) or hinge (projected)."""
    if recipe.d_arch == "projected":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(recipe: Recipe, fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean() if recipe.d_arch == "projected" else F.softplus(-fake).mean()


def step_rng(seed: int, step: int) -> torch.Generator:
    """The random source of one step: a pure function of (seed, step)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (1 << 63))


def freeze(g: nn.Module, n: int, params: str = "all") -> list[nn.Parameter]:
    """Freeze G's first n transposed convolutions and the BatchNorm right after each
    (params "bn": every convolution, only BatchNorm scales and shifts train); with
    n > 0 or "bn" every BatchNorm of G is put in eval mode (running statistics frozen;
    call it after g.train(), which nothing calls again). Returns the parameters left
    to train."""
    if n > 0 and any(type(m) is nn.Conv2d for m in g.modules()):
        raise TrainError(f"--freeze-g {n}: counts the layers of a dcgan-generator; this G "
                         f"has other layers; use --g-params bn to train only its BatchNorm")
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    if not 0 <= n < len(convs):
        raise TrainError(f"--freeze-g {n}: G has {len(convs)} layers; freeze 0 (none) to "
                         f"{len(convs) - 1} (all but the last)")
    if params not in ("all", "bn"):
        raise TrainError(f"--g-params {params!r}: use 'all' or 'bn'")
    if n == 0 and params == "all":
        return list(g.parameters())
    frozen, count = set(), 0
    for m in g.modules():
        if isinstance(m, nn.ConvTranspose2d):
            count += 1
        if (count <= n and isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d))
                or params == "bn" and isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))):
            frozen.update(id(p) for p in m.parameters())
    for p in g.parameters():
        p.requires_grad_(id(p) not in frozen)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return [p for p in g.parameters() if p.requires_grad]


def _widened(g: nn.Module, manifest: dict, recipe: Recipe) -> nn.Module:
    """The init's light G widened to --widen channels (same pictures), or a TrainError."""
    from passersby.train import widen

    own = manifest["args"].get("ngf")
    if manifest["arch"] != ARCHS["lite"] or not isinstance(own, int):
        raise TrainError(f"--widen {recipe.widen}: only a light G (lite-generator) widens; "
                         f"the --init is {manifest['arch']}: drop --widen")
    if not own <= recipe.widen <= 256:
        raise TrainError(f"--widen {recipe.widen}: the --init is {own} wide; give a width "
                         f"from {own} to 256 (e.g. {own * 3 // 2})")
    return widen.widen(g, recipe.widen, seed=recipe.seed)


class Nets:
    """G, D, the average of G and the two optimizers, built from a recipe and an init."""

    def __init__(self, recipe: Recipe, root: Path, init: str | None,
                 device: torch.device) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(recipe.seed)
            if init:
                g, m = weights.load_module(root, init, "generator")
                self.args, self.arch = dict(m["args"]), m["arch"]
                if recipe.widen:
                    g = _widened(g, m, recipe)
                    self.args["ngf"] = recipe.widen
                self.init = {"package": init, "tensors_sha256": m["tensors_sha256"],
                             "licence": m.get("licence", "not stated")}
            else:
                if recipe.widen:
                    raise TrainError(f"--widen {recipe.widen} widens the --init's G: give "
                                     f"--init PACKAGE, or --ngf for a run from scratch")
                if recipe.g_arch not in ARCHS:
                    raise TrainError(f"--g-arch {recipe.g_arch!r}: use one of {sorted(ARCHS)}")
                self.args = {"nz": 100, "ngf": recipe.ngf, "nc": 3, "size": recipe.size}
                self.arch = ARCHS[recipe.g_arch]
                g, self.init = models.build(self.arch, self.args), None
                g.apply(_init_weights)
            d = _discriminator(recipe, int(self.args["nc"]))
            self.d = None if d is None else d.to(device)
        if int(self.args.get("size", 64)) != recipe.size:
            raise TrainError(f"--size {recipe.size}: the generator {init or 'architecture'} "
                             f"makes {self.args.get('size')} px pictures; use --size "
                             f"{self.args.get('size')}")
        self.g = g.to(device).train()
        trainable = freeze(self.g, recipe.freeze_g, recipe.g_params)
        self.ema = copy.deepcopy(self.g).eval()
        self.g0 = None                                  # the init, frozen: the anchor
        if recipe.anchor > 0:
            if not init:
                raise TrainError("--anchor pulls G toward the structure of its --init; "
                                 "give --init or drop --anchor")
            self.g0 = copy.deepcopy(self.g).eval().requires_grad_(False)
        self.imle_z: torch.Tensor | None = None         # each crop's nearest latent
        self.opt_z: torch.optim.Optimizer | None = None  # --imle-learn: the latents' own
        self.learn = recipe.imle_learn
        self.space = self.real_features = None
        self.crop_spread: float | None = None           # --mode-seeking's unit
        if not recipe.ema_rampup >= 0:
            raise TrainError(f"--ema-rampup {recipe.ema_rampup}: use a ratio >= 0 (0: the "
                             f"fixed --ema; 0.05: StyleGAN2-ADA's)")
        if not (0 <= recipe.imle_learn < 10) or (recipe.imle_learn > 0 and recipe.imle <= 0):
            raise TrainError(f"--imle-learn {recipe.imle_learn}: use a rate >= 0 and < 10 "
                             f"(e.g. 0.03; 0: latents searched only), with --imle W > 0")
        if recipe.fake_latents == "learned" and not (recipe.imle_learn > 0 and self.d):
            raise TrainError("--fake-latents learned draws the adversary's fakes from the "
                             "learned latents' spread: it needs --imle-learn LR (with --imle "
                             "W) and a discriminator (--d-arch dcgan or projected)")
        if not (recipe.imle >= 0 and recipe.imle_pool >= 1 and recipe.imle_every >= 0):
            raise TrainError(f"--imle {recipe.imle} --imle-pool {recipe.imle_pool} --imle-every "
                             f"{recipe.imle_every}: use a weight >= 0 (0: none), a pool of at "
                             f"least 1 latent, every >= 0 steps (0: one pass over the crops)")
        if not (0 <= recipe.mode_seeking < 100) or (recipe.mode_seeking > 0 and not (
                recipe.imle > 0 and self.d is not None and recipe.batch >= 2)):
            raise TrainError(f"--mode-seeking {recipe.mode_seeking}: use a weight >= 0 and "
                             f"< 100 (e.g. 2; 0: none), with --imle W > 0 (its space), a "
                             f"discriminator (its fakes) and --batch of 2 or more")
        if recipe.imle > 0:
            from passersby.train import imle, projected

            try:
                self.space = imle.Space(recipe.imle_face).to(device)
            except projected.BackboneUnavailable as e:
                raise TrainError(str(e)) from None
            except ValueError as e:
                raise TrainError(f"--imle-face {recipe.imle_face}: {e}") from None
        betas = (recipe.beta1, 0.999 if recipe.d_arch == "dcgan" else 0.99)
        self.opt_g = torch.optim.Adam(trainable, recipe.lr_g, betas=betas)
        self.opt_d = (None if self.d is None
                      else torch.optim.Adam(self.d.parameters(), recipe.lr_d, betas=betas))

    def parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        """The networks and optimizers a checkpoint holds (no D without an adversary)."""
        nets = {"g": self.g, "d": self.d, "ema": self.ema}
        opts = {"opt_g": self.opt_g, "opt_d": self.opt_d, "opt_z": self.opt_z}
        return ({k: v for k, v in nets.items() if v is not None},
                {k: v for k, v in opts.items() if v is not None})

    def frozen(self) -> dict:
        """What of D is not in the checkpoint (the projected D's backbone and random
        mixing): a resume must find the same."""
        proj = getattr(self.d, "projector", None)
        return {} if proj is None else {"projector_sha256": proj.fingerprint(),
                                        "backbone_sha256": proj.backbone_sha256}

    def tensors(self) -> dict[str, torch.Tensor]:
        out = pack(*self.parts())
        if self.imle_z is not None:
            out["imle.z"] = self.imle_z.detach().cpu().contiguous().clone()
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        tensors = dict(tensors)
        z = tensors.pop("imle.z", None)
        self.set_latents(None if z is None else z.to(next(self.g.parameters()).device),
                         fresh=False)
        unpack(tensors, *self.parts())

    def set_latents(self, z: torch.Tensor | None, fresh: bool = True) -> None:
        """The crops' latents; learned ones (--imle-learn) get their own optimizer: Adam
        without momentum, so a latent not in the batch does not move. Fresh ones (a
        search's) are centred first; a checkpoint's are taken as they are."""
        self.imle_z, self.opt_z = z, None
        if z is not None and self.learn > 0:
            self.imle_z = nn.Parameter(z - z.mean(0) if fresh else z)
            self.opt_z = torch.optim.Adam([self.imle_z], self.learn, betas=(0.0, 0.999))


def pack(nets: dict[str, nn.Module],
         opts: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
    """Networks and optimizer moments -> one flat tensor dict (a checkpoint's content)."""
    out = {}
    for name, net in nets.items():
        out.update({f"{name}.{k}": v for k, v in net.state_dict().items()})
    for name, opt in opts.items():
        for i, state in opt.state_dict()["state"].items():
            out.update({f"{name}.{i}.{k}": torch.as_tensor(v) for k, v in state.items()})
    return {k: v.detach().cpu().contiguous().clone() for k, v in out.items()}


def unpack(tensors: dict[str, torch.Tensor], nets: dict[str, nn.Module],
           opts: dict[str, torch.optim.Optimizer]) -> None:
    """The inverse of pack: load the networks and the optimizers in place."""
    for name, net in nets.items():
        net.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items()
                             if k.startswith(name + ".")})
    for name, opt in opts.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith(name + "."):
                _, i, key = k.split(".", 2)
                state.setdefault(int(i), {})[key] = v
        opt.load_state_dict({"state": state,
                             "param_groups": opt.state_dict()["param_groups"]})


def structure(x: torch.Tensor) -> torch.Tensor:
    """Pictures [N,3,S,S] -> [N,256]: 16x16 luminance, each picture normalised to zero
    mean and unit std: where light and dark are, not the palette (the anchor's space)."""
    lum = F.adaptive_avg_pool2d(x.mean(1, keepdim=True), 16).flatten(1)
    return (lum - lum.mean(1, keepdim=True)) / (lum.std(1, keepdim=True) + 1e-4)


def train_step(nets: Nets, real: torch.Tensor, recipe: Recipe, step: int,
               ada: dict | None = None) -> tuple[float, float]:
    """One D update and one G update; real [N,3,S,S] uint8 (the whole dataset, on device).
    ada (recipe.ada): {"p", "signs", "count"}, updated in place."""
    gen = step_rng(recipe.seed, step)
    dev = real.device
    p = ada["p"] if ada is not None else 1.0
    idx = torch.randint(0, real.shape[0], (recipe.batch,), generator=gen)
    if nets.d is None:                          # no adversary: coverage alone
        loss_g = recipe.imle * _coverage(nets, real, recipe, step, idx)
        _g_update(nets, recipe, loss_g, step)
        return 0.0, loss_g.item()
    flip = (torch.rand(recipe.batch, generator=gen) < 0.5).reshape(-1, 1, 1, 1).to(dev)
    x = real[idx.to(dev)].float() / 127.5 - 1.0                     # [B,3,S,S] f32 -1..1
    x = torch.where(flip, x.flip(3), x)
    z = torch.randn(recipe.batch, nets.g.nz, generator=gen).to(dev)
    if recipe.fake_latents == "learned":        # the spread the shipped G samples
        z = z @ spread(_latents(nets, real, recipe, step).detach()).T.float()
    fake = nets.g(z)                                                   # [B,3,S,S] f32 -1..1
    both = diff_augment(torch.cat([x, fake.detach()]), gen, p)
    if recipe.d_arch == "projected" and recipe.d_norm == "batch":   # reals and fakes apart:
        logits = torch.cat([nets.d(both[:recipe.batch]),              # the heads' BatchNorm
                            nets.d(both[recipe.batch:])])             # sees a fake batch
    else:
        logits = nets.d(both)
    loss_d = d_losses(recipe, logits[:recipe.batch], logits[recipe.batch:])
    penalty = None
    if recipe.r1 > 0 and step % recipe.r1_every == 0:                  # lazy R1 on reals
        xr = x.detach().requires_grad_(True)
        out = nets.d(diff_augment(xr, gen, p)).sum()
        (grad,) = torch.autograd.grad(out, xr, create_graph=True)
        penalty = grad.square().sum((1, 2, 3)).mean() * (recipe.r1 / 2 * recipe.r1_every)
    nets.opt_d.zero_grad(set_to_none=True)
    (loss_d if penalty is None else loss_d + penalty).backward()
    nets.opt_d.step()
    if ada is not None:
        ada["signs"] += logits[:recipe.batch].detach().sign().sum().item()
        ada["count"] += recipe.batch
        if (step + 1) % recipe.ada_interval == 0:
            r_t = ada["signs"] / ada["count"]
            move = recipe.ada_interval / recipe.ada_speed
            ada["p"] = min(1.0, max(0.0, ada["p"] + (move if r_t > recipe.ada_target
                                                     else -move)))
            ada.update(signs=0.0, count=0, r_t=round(r_t, 4))
    if step < recipe.d_warmup:                                         # D learns first
        return loss_d.item(), 0.0
    loss_g = g_loss(recipe, nets.d(diff_augment(fake, gen, p)))
    if nets.space is not None:                  # every crop keeps a picture near it
        loss_g = loss_g + recipe.imle * _coverage(nets, real, recipe, step, idx)
    if recipe.mode_seeking > 0:                 # no two of the sampler's pictures alike
        loss_g = loss_g + recipe.mode_seeking * _mode_seeking(nets, real, fake)
    if nets.g0 is not None:                     # keep the init's faces: light/dark layout
        with torch.no_grad():
            want = structure(nets.g0(z))
        loss_g = loss_g + recipe.anchor * (structure(fake) - want).square().mean()
    _g_update(nets, recipe, loss_g, step)
    return loss_d.item(), loss_g.item()


def ema_decay(recipe: Recipe, step: int) -> float:
    """The average's decay at step `step` (0-based): `ema`, or with `ema_rampup` R the
    decay whose half-life is R x (step + 1) steps when that is shorter."""
    if recipe.ema_rampup <= 0 or not 0 < recipe.ema < 1:
        return recipe.ema
    half_life = min(math.log(0.5) / math.log(recipe.ema), recipe.ema_rampup * (step + 1))
    return 0.5 ** (1 / half_life)


def _g_update(nets: Nets, recipe: Recipe, loss_g: torch.Tensor, step: int) -> None:
    """G's step on its loss, then the average follows G."""
    nets.opt_g.zero_grad(set_to_none=True)
    if nets.opt_z is not None:
        nets.opt_z.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opt_g.step()
    if nets.opt_z is not None:                  # the crops' latents learn, stay centred
        nets.opt_z.step()
        with torch.no_grad():
            nets.imle_z.sub_(nets.imle_z.mean(0))
    keep = ema_decay(recipe, step)
    with torch.no_grad():
        for avg, cur in zip(nets.ema.state_dict().values(), nets.g.state_dict().values()):
            avg.lerp_(cur, 1 - keep) if avg.is_floating_point() else avg.copy_(cur)


def _coverage(nets: Nets, real: torch.Tensor, recipe: Recipe, step: int,
              idx: torch.Tensor) -> torch.Tensor:
    """The IMLE term of step `step` for the crops `idx` (unflipped); each crop's nearest
    latent is searched again every `imle_every` steps (one pass over the crops by
    default), from a random source of its own (a function of seed and step)."""
    from passersby.train import imle

    dev = real.device
    z = _latents(nets, real, recipe, step)
    return imle.loss(nets.space, nets.g(z[idx.to(dev)]), _crop_features(nets, real)[idx.to(dev)])


def _mode_seeking(nets: Nets, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Mode seeking (MSGAN, Mao et al. 2019) in the coverage space: the fakes [B,...] of
    independent latents in pairs (i, i + B/2), each pair's distance over the crops'
    median pairwise distance r, the term mean(1 / (r + 0.1)): it pushes close pairs apart
    hard, far ones hardly (a G that answers many latents with one face pays for it)."""
    if nets.crop_spread is None:
        f = _crop_features(nets, real)
        nets.crop_spread = float(torch.cdist(f, f)[tuple(torch.triu_indices(
            len(f), len(f), 1))].median())
    half = fake.shape[0] // 2
    f = nets.space(fake[:2 * half])
    r = (f[:half] - f[half:]).square().sum(1).add(1e-12).sqrt() / nets.crop_spread
    return (1.0 / (r + 0.1)).mean()


def _crop_features(nets: Nets, real: torch.Tensor) -> torch.Tensor:
    """The crops [N,3,S,S] uint8 read in the coverage space [N,D], once a run."""
    if nets.real_features is None:
        with torch.no_grad():
            nets.real_features = torch.cat([nets.space(real[i:i + 64].float() / 127.5 - 1.0)
                                            for i in range(0, real.shape[0], 64)])
    return nets.real_features


def _latents(nets: Nets, real: torch.Tensor, recipe: Recipe, step: int) -> torch.Tensor:
    """The crops' latents [N,nz] at step `step`: searched again every `imle_every` steps
    (one pass over the crops by default; learned ones only once), from a random source
    of its own (a function of seed and step), so calling it twice in a step is the same."""
    from passersby.train import imle

    every = recipe.imle_every or max(1, real.shape[0] // recipe.batch)
    if nets.imle_z is None or (step % every == 0 and nets.opt_z is None):
        keep = nets.imle_z if recipe.imle_keep else None
        nets.set_latents(imle.nearest(nets.g, nets.space, _crop_features(nets, real),
                                      recipe.imle_pool,
                                      step_rng(recipe.seed + 104_729, step), keep=keep,
                                      unique=recipe.imle_unique))
    return nets.imle_z


def _save_checkpoint(folder: Path, nets: Nets, record: dict, keep: bool = False) -> None:
    """Tensors to a new file, then the JSON naming it (atomic), then older files go, but
    for kept ones (`keep`: this one is kept, with its record beside it as
    `checkpoint-N.json`, for `--steps N` to export later)."""
    name = f"checkpoint-{record['step']:07d}.safetensors"
    tmp = folder / (name + ".tmp")
    save_file(nets.tensors(), str(tmp))
    os.replace(tmp, folder / name)
    text = json.dumps({**record, "file": name}, indent=1) + "\n"
    targets = ["checkpoint.json"] + ([name.replace(".safetensors", ".json")] if keep else [])
    for target in targets:
        tmp = folder / (target + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / target)
    for old in folder.glob("checkpoint-*.safetensors"):
        if old.name != name and not old.with_suffix(".json").exists():
            old.unlink()


def kept_steps(folder: Path) -> list[int]:
    """The steps of a run whose checkpoints were kept (`--keep-every`)."""
    return sorted(int(p.stem.split("-")[1]) for p in folder.glob("checkpoint-*.json")
                  if p.with_suffix(".safetensors").exists())


def _go_back(folder: Path, nets: Nets, record: dict, steps: int) -> dict:
    """The record of the kept checkpoint at `steps` (earlier than the run's last), its
    tensors loaded; the run itself (checkpoint.json) stays where it is."""
    path = folder / f"checkpoint-{steps:07d}.json"
    if not path.exists():
        kept = kept_steps(folder)
        raise TrainError(f"--steps {steps}: the run in {folder} is at step {record['step']} "
                         f"and kept no checkpoint at step {steps} (kept: "
                         f"{', '.join(map(str, kept)) or 'none; see --keep-every'}); give a "
                         f"kept step, a larger --steps, or delete {folder} to start over")
    back = json.loads(path.read_text(encoding="utf-8"))
    nets.load(load_file(str(folder / back["file"])))
    return {**back, "recipe": record["recipe"]}


def _resume(folder: Path, nets: Nets, expect: dict, defaults: dict | None = None) -> dict | None:
    """The checkpoint record (nets loaded from it), or None when there is none.
    `defaults`: recipe fields added since a run started, at their old behaviour's value."""
    path = folder / "checkpoint.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if defaults and isinstance(record.get("recipe"), dict):
        record["recipe"] = {**defaults, **record["recipe"]}
    differs = [k for k in expect if record.get(k) != expect[k]]
    if differs:
        k = differs[0]
        raise TrainError(f"{path}: the run there was started with {k} = {record.get(k)!r}, "
                         f"this command gives {expect[k]!r}; re-run with the same options to "
                         f"continue it, or delete {folder} to start over")
    nets.load(load_file(str(folder / record["file"])))
    log.info("resuming %s at step %d", folder, record["step"])
    return record


# what a branch may change: weights and rates; the nets, their shapes, the data and the
# seed stay those of the run it branches from
LOOSE = ("lr_g", "lr_d", "ema", "ema_rampup", "imle", "imle_face", "imle_every",
         "mode_seeking")


def _branch(root: Path, source: str, folder: Path, expect: dict) -> None:
    """`--branch RUN[@STEP]`: a new run starts from RUN's checkpoint (its latest, or its
    kept STEP), all of it (G, its average, D, the crops' learned latents, the optimizers,
    the step), under this command's recipe, which may differ from RUN's in LOOSE fields
    only: a lever is tried from where a run stands, without the restart of a fresh D and
    fresh latents. Once started, the branch is a run of its own and resumes as any."""
    run, _, at = source.partition("@")
    step = None
    if at:
        if not at.isdigit():
            raise TrainError(f"--branch {source}: STEP must be a whole number (a kept step "
                             f"of {run}), e.g. --branch {run}@2500")
        step = int(at)
    if (folder / "checkpoint.json").exists():                  # the branch goes on
        record = json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))
        was = record.get("branched_from") or {}
        if (was.get("run"), was.get("step") if step is not None else None) != (run, step):
            raise TrainError(f"--branch {source}: {folder} holds a run "
                             + (f"branched from {was.get('run')}@{was.get('step')}" if was
                                else "that is no branch")
                             + "; drop --branch to continue it, or give another --out")
        return
    src = root / run / TRAIN_DIR
    path = src / (f"checkpoint-{step:07d}.json" if step is not None else "checkpoint.json")
    if not path.exists():
        kept = kept_steps(src) if src.is_dir() else []
        raise TrainError(f"--branch {source}: no checkpoint there ({path}); give a run of "
                         f"this weights folder" + (f" and one of its kept steps: "
                                                   f"{', '.join(map(str, kept))}" if kept else
                                                   " that has a checkpoint"))
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        tensors = (src / record["file"]).read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrainError(f"--branch {source}: {path} is unreadable ({e}); give another "
                         f"step") from None
    theirs = {**DEFAULTS, **(record.get("recipe") or {})}
    changed = {k: [theirs.get(k), v] for k, v in expect["recipe"].items()
               if theirs.get(k) != v}
    fixed = [k for k in changed if k not in LOOSE]
    if fixed:
        k = fixed[0]
        raise TrainError(f"--branch {source}: {k} is {changed[k][0]!r} there and "
                         f"{changed[k][1]!r} here; a branch keeps the run's nets, data and "
                         f"seed and may change only {', '.join(LOOSE)}: give {k} = "
                         f"{changed[k][0]!r} (or train a new run with --init)")
    for k in ("init", "data_sha256", "projector_sha256", "backbone_sha256"):
        if record.get(k) != expect.get(k):
            raise TrainError(f"--branch {source}: the run there has another {k} "
                             f"({record.get(k)!r} against {expect.get(k)!r}): give its "
                             f"--init and --data")
    record.update(recipe=expect["recipe"], branched_from={
        "run": run, "step": step if step is not None else record["step"],
        "changed": changed})
    (folder / record["file"]).write_bytes(tensors)
    (folder / "checkpoint.json").write_text(json.dumps(record, indent=1) + "\n",
                                            encoding="utf-8")
    log.info("branching %s from %s at step %d (changed: %s)", folder, run, record["step"],
             ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()) or "nothing")


CARRIED = "carried"


def carry(root: Path, out: str) -> Path:
    """Copy the run's latest checkpoint (tensors + record) to `<root>/<out>/carried/`, the
    folder to commit, so that the run can continue on a machine that holds only what is
    committed (`train` adopts it when its own run folder is empty). Safe while the run
    goes on: the record is read first, then the file it names (a save in between is
    retried)."""
    folder, dest = root / out / TRAIN_DIR, root / out / CARRIED
    for _ in range(5):
        try:
            record = json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))
            tensors = (folder / record["file"]).read_bytes()
        except FileNotFoundError:
            time.sleep(1.0)
            continue
        except (OSError, ValueError, KeyError) as e:
            raise TrainError(f"{folder}: no readable checkpoint to carry ({e})") from None
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("checkpoint-*.safetensors"):
            if old.name != record["file"]:
                old.unlink()
        tmp = dest / (record["file"] + ".tmp")
        tmp.write_bytes(tensors)
        os.replace(tmp, dest / record["file"])
        tmp = dest / "checkpoint.json.tmp"
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, dest / "checkpoint.json")
        return dest / "checkpoint.json"
    raise TrainError(f"{folder}: no checkpoint to carry (the run has not saved one yet)")


def _adopt_carried(root: Path, out: str, folder: Path) -> None:
    """A carried checkpoint (committed from another machine) starts the run folder when
    that is empty."""
    src = root / out / CARRIED
    if (folder / "checkpoint.json").exists() or not (src / "checkpoint.json").exists():
        return
    record = json.loads((src / "checkpoint.json").read_text(encoding="utf-8"))
    (folder / record["file"]).write_bytes((src / record["file"]).read_bytes())
    (folder / "checkpoint.json").write_text(json.dumps(record, indent=1) + "\n",
                                            encoding="utf-8")
    log.info("continuing the carried run of %s at step %d", out, record["step"])


def check_budget(steps: int | None, minutes: float | None) -> None:
    if (steps is None) == (minutes is None):
        raise TrainError("give exactly one budget: --steps N or --minutes M")


def run_folder(root: Path, out: str) -> Path:
    """`<root>/<out>/train/`, made; a clear error when the weights folder is not writable."""
    return writable_folder(root / out / TRAIN_DIR, f"--out {out}:", TrainError,
                           holds="the training run",
                           fix="check the weights folder (weights.dir) is writable")


SHIP_BATCHES = 32   # batches of 64 latents that measure the shipped average's statistics


def shipped(nets: Nets, recipe: Recipe) -> nn.Module:
    """The average of G as it ships (eval mode). When G trained with batch statistics,
    the average's BatchNorm statistics are not those of its own pictures (they are an
    average of other networks' statistics): they are measured again over SHIP_BATCHES
    batches of 64 latents (fixed seed). From scratch this is the difference between noise and
    faces; with frozen statistics (fine-tuning recipes) the average is used as it is."""
    g = copy.deepcopy(nets.ema)
    if recipe.imle_learn > 0 and nets.imle_z is not None:   # learned latents' spread
        fold_prior(g, nets.imle_z.detach())
    if recipe.freeze_g > 0 or recipe.g_params == "bn":
        return g.eval()
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None          # a plain average over the batches below
    gen, dev = torch.Generator().manual_seed(recipe.seed + 11), next(g.parameters()).device
    g.train()
    with torch.no_grad():
        for _ in range(SHIP_BATCHES):
            g(torch.randn(64, g.nz, generator=gen).to(dev))
    for m in bns:
        m.momentum = 0.1
    return g.eval()


def fold_prior(g: nn.Module, codes: torch.Tensor) -> None:
    """Make z ~ N(0,I) sample the learned latents' spread: their covariance's Cholesky
    factor L (codes [N,nz], centred) is folded into G's first layer, whose input is z
    (W'[i] = sum_j L[j,i] W[j]), so that G'(e) = G(L e) exactly."""
    first = next(m for m in g.modules() if isinstance(m, (nn.ConvTranspose2d, nn.Linear)))
    nz = codes.shape[1]
    if first.weight.shape[0 if isinstance(first, nn.ConvTranspose2d) else 1] != nz:
        raise TrainError(f"G's first layer {first} does not read the {nz}-d latent: "
                         f"--imle-learn cannot fold the latents' spread into it")
    chol = spread(codes)
    with torch.no_grad():
        if isinstance(first, nn.ConvTranspose2d):      # weight [nz, out, k, k]
            first.weight.copy_(torch.einsum("ji,jokl->iokl", chol,
                                            first.weight.double()).float())
        else:                                          # weight [out, nz]
            first.weight.copy_((first.weight.double() @ chol).float())


def spread(codes: torch.Tensor) -> torch.Tensor:
    """The Cholesky factor L [nz,nz] (float64) of centred codes' [N,nz] covariance: L e,
    e ~ N(0,I), has their spread."""
    nz = codes.shape[1]
    cov = codes.T.double() @ codes.double() / max(codes.shape[0] - 1, 1)
    return torch.linalg.cholesky(cov + 1e-6 * torch.eye(nz, dtype=torch.float64,
                                                        device=codes.device))


def _sample_grid(g: nn.Module, z: torch.Tensor, path: Path) -> None:
    """An 8x8 grid of `g` (a `shipped` average) on the fixed latents."""
    from passersby.generator.chain import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        pictures = to_uint8(g(z.to(next(g.parameters()).device)))
    data.write_png(path, data.grid(list(pictures)))


def train(root: Path, dataset: Path, out: str, recipe: Recipe = Recipe(),
          init: str | None = None, steps: int | None = None, minutes: float | None = None,
          device: str = "auto", progress: Callable[[dict], None] | None = None,
          keep_every: int = 0, branch: str | None = None) -> dict:
    """Train (or continue) until `steps` in all or `minutes` of training in all; then
    export the package `<root>/<out>` and return its manifest. `keep_every` K: keep the
    checkpoint of every K-th step; `steps` N below the run's last step exports the kept
    checkpoint of step N (GAN quality wanders: measure the kept steps, pick one)."""
    from passersby.generator.chain import pick_device

    check_budget(steps, minutes)
    if keep_every < 0 or keep_every % recipe.checkpoint_every:
        raise TrainError(f"--keep-every {keep_every}: use a multiple of "
                         f"{recipe.checkpoint_every} (a checkpoint is written every "
                         f"{recipe.checkpoint_every} steps), or 0 to keep only the last")
    dev = pick_device(device, "--device")
    crops, report = data.load_crops(dataset, recipe.size)             # [N,S,S,3] uint8
    real = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(dev)
    if recipe.imle > 0 and recipe.imle_unique and recipe.imle_pool < real.shape[0]:
        raise TrainError(f"--imle-pool {recipe.imle_pool} with --imle-unique: {dataset} holds "
                         f"{real.shape[0]} crops and each needs a latent of its own; give "
                         f"--imle-pool {real.shape[0]} or more")
    nets = Nets(recipe, root, init, dev)
    folder = run_folder(root, out)
    _adopt_carried(root, out, folder)
    expect = {"recipe": asdict(recipe), "init": nets.init, **nets.frozen(),
              "data_sha256": hashlib.sha256(crops.tobytes()).hexdigest()}
    if branch:
        _branch(root, branch, folder, expect)
    record = _resume(folder, nets, expect, DEFAULTS) or {**expect, "step": 0, "elapsed_s": 0.0,
                                                "losses": [None, None], "history": []}
    z_fixed = torch.randn(64, nets.g.nz, generator=torch.Generator().manual_seed(recipe.seed + 7))
    step, elapsed, recent = record["step"], record["elapsed_s"], []
    ada = record.setdefault("ada", {"p": 0.0, "signs": 0.0, "count": 0, "r_t": None}
                            if recipe.ada else None)
    started = time.perf_counter() - elapsed
    if steps is not None and steps < step:
        return _export(root, out, nets, _go_back(folder, nets, record, steps), report,
                       dataset, z_fixed)

    def save() -> None:
        if recent:
            record["losses"] = [_mean(v) for v in zip(*recent)]
        record.update(step=step, elapsed_s=elapsed)
        _save_checkpoint(folder, nets, record, keep_every > 0 and step % keep_every == 0)

    try:
        while (step < steps) if steps is not None else (elapsed < minutes * 60):  # type: ignore[operator]
            losses = train_step(nets, real, recipe, step, ada)
            if not all(math.isfinite(v) for v in losses):
                raise TrainError(f"step {step}: losses {losses} are not finite; change "
                                 f"the recipe (--seed-train, --batch) and delete {folder}")
            step, elapsed = step + 1, time.perf_counter() - started
            recent = (recent + [losses])[-50:]
            if step % recipe.sample_every == 0:
                _sample_grid(shipped(nets, recipe), z_fixed,
                             folder / "samples" / f"step-{step:07d}.png")
            if step % recipe.checkpoint_every == 0:
                record["history"].append([step, round(elapsed, 1),
                                          *(_mean(v) for v in zip(*recent)),
                                          *([round(ada["p"], 4), ada["r_t"]] if ada else [])])
                save()
            if progress:
                progress({"step": step, "steps": steps, "elapsed_s": elapsed,
                          "minutes": minutes, "loss_d": losses[0], "loss_g": losses[1],
                          "ada_p": ada["p"] if ada else None})
    except KeyboardInterrupt:
        save()
        raise
    save()
    return _export(root, out, nets, record, report, dataset, z_fixed)


def _mean(values: tuple[float, ...]) -> float:
    return round(sum(values) / len(values), 4)


def _export(root: Path, out: str, nets: Nets, record: dict, report: dict,
            dataset: Path, z_fixed: torch.Tensor) -> dict:
    """The package: the shipped average (fp16), its sample grid and the manifest."""
    recipe, init = record["recipe"], nets.init
    crop = report["recipe"]
    images = (f"{crop.get('licence') or 'licence not stated'}; "
              f"{crop.get('credit') or 'no credit given'}")
    licence = (f"Fine-tuned from {init['package']}, whose licence is: {init['licence']} "
               f"These weights inherit it. Training images: {images}." if init else
               f"Trained from scratch by passersby; training images: {images}.")
    fork = record.get("branched_from")
    made_by = (f"passersby train generator --data {dataset} --out {out}"
               + (f" --init {init['package']}" if init else "")
               + (f" --branch {fork['run']}@{fork['step']}" if fork else "")
               + f" --steps {record['step']}"
               + f" --seed-train {recipe['seed']} --batch {recipe['batch']}"
               + "".join(f" --{flag}" + ("" if recipe[key] is True else f" {recipe[key]}")
                         for flag, key in RECIPE_FLAGS
                         if recipe.get(key, DEFAULTS[key]) != DEFAULTS[key]))
    manifest = {
        "kind": "generator", "arch": nets.arch, "args": nets.args,
        "description": f"{recipe['size']} px generator trained by passersby on "
                       f"{report['faces']} face crops of {report['source_folder']}"
                       + (f", fine-tuned from {init['package']}" if init else ""),
        "lineage": {"init": init, "command": made_by,
                    **({"branched_from": record["branched_from"]}
                       if record.get("branched_from") else {})},
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
    g = shipped(nets, Recipe(**recipe))
    _sample_grid(g, z_fixed, root / out / SAMPLES)
    tensors = {k: v.half() if v.is_floating_point() else v
               for k, v in g.state_dict().items()}   # fp16: half the file, same pictures
    return weights.save_package(root, out, tensors, manifest)
