"""The network chain: G (latent -> portrait), E (portrait -> latent) and, when configured,
R (G's portrait -> the same portrait at 4x, what the screen shows), on one device.

Inference is made fast once, at load (bench/chain_peak.py measures what pays):
BatchNorm layers are folded into the convolution before them (exact up to float
rounding); on CUDA activations run channels_last (the tensor cores' layout) and
the generator runs in float16 where it holds quality (`half`, checked against
float32 by tests/generator/test_gpu_path.py; the refiner likewise). The live stream is a
feedback loop, so it is sequential (batch 1); `generate_batch` serves the batched
users (audits, overnight renders, one stream per screen).

The refiner only paints what is shown: E, the novelty memory and the near-black check
read G's own picture (stream.py), so switching R on or off never changes the walk.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from passersby.common.config import WeightsConfig
from passersby.common.errors import UserError
from passersby.generator import copies, weights
from passersby.generator.identity import Reader

log = logging.getLogger(__name__)
REFINE_CPU_BATCH = 1   # images per refiner pass on the CPU (see Chain.refine)


class DeviceError(UserError, RuntimeError):
    """The device asked for is not on this machine; the message says what to set."""


def pick_device(name: str, where: str = "stream.device") -> torch.device:
    """The torch device for `name` (auto | cpu | cuda); `where` is what named it (a config
    key, or a flag such as --device), for the error when CUDA is asked for and absent."""
    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        fix = (f"give {where} auto or {where} cpu" if where.startswith("-") else
               f"set {where}: auto (the GPU when there is one, else the CPU) or cpu")
        raise DeviceError(f"{where} = {name!r}: torch sees no CUDA device on this machine "
                          f"(torch {torch.__version__}, {build}); {fix}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _fold_batchnorm(seq: nn.Sequential) -> int:
    """Fold each eval-mode BatchNorm2d into the (transposed) convolution before it.

    y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta becomes a convolution with
    scaled weights and a bias; the BatchNorm is replaced by Identity. Returns how many.
    """
    folded = 0
    for i in range(1, len(seq)):
        conv, bn = seq[i - 1], seq[i]
        if not (isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None
                and isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))
                and conv.groups == 1):
            continue
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)   # [C_out]
        shift = bn.bias.detach() - bn.running_mean * scale
        w = conv.weight.detach()
        # Conv2d weight [C_out, C_in, k, k]; ConvTranspose2d weight [C_in, C_out, k, k]
        shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
        conv.weight = nn.Parameter(w * scale.reshape(shape), requires_grad=False)
        old = conv.bias.detach() if conv.bias is not None else torch.zeros_like(shift)
        conv.bias = nn.Parameter(old * scale + shift, requires_grad=False)
        seq[i] = nn.Identity()
        folded += 1
    return folded


def prepare(module: nn.Module, device: torch.device, half: bool = False,
            channels_last: bool | None = None) -> nn.Module:
    """`module` for inference: eval, BatchNorm folded, on device (in place).

    channels_last: None = on CUDA only (on this 2-core CPU it did not pay at batch 1,
    the live stream's batch; see bench/chain_peak.py).
    """
    module = module.eval()
    for child in module.modules():
        if isinstance(child, nn.Sequential):
            _fold_batchnorm(child)
    if channels_last is None:
        channels_last = device.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module = module.to(device, memory_format=fmt)
    return module.half() if half else module


def default_half(device: torch.device) -> bool:
    """float16 on CUDA (tensor cores), float32 on CPU (no fast float16 there)."""
    return device.type == "cuda"


@dataclass
class Chain:
    generator: nn.Module
    encoder: nn.Module | None
    device: torch.device
    generator_manifest: dict
    encoder_manifest: dict | None = None
    half: bool = False            # generator and refiner in float16 (CUDA); outputs stay f32
    refiner: nn.Module | None = None
    refiner_manifest: dict | None = None
    identity: Reader | None = None  # who the sitter is (the sitter memory)
    copies: copies.Guard | None = None  # the world's training crops, never shown again

    @property
    def nz(self) -> int:
        return int(self.generator_manifest["args"]["nz"])

    @property
    def size(self) -> int:
        return int(self.generator_manifest["args"].get("size", 64))

    @property
    def shown_size(self) -> int:
        """Side of the pictures the screen gets: the refiner's 4x, else G's own."""
        return self.size * int(getattr(self.refiner, "scale", 4)) if self.refiner else self.size

    @property
    def refiner_name(self) -> str:
        """The refiner package in use, "" when none."""
        return str(self.refiner_manifest.get("name", "?")) if self.refiner_manifest else ""

    @classmethod
    def from_config(cls, w: WeightsConfig, device: str = "auto") -> Chain:
        """The chain a config's `weights:` asks for (refiner, identity: see optional_package)."""
        root = weights.weights_dir(w.dir)
        return cls.load(root, w.generator, w.encoder or None, device,
                        refiner=optional_package(root, w.refiner, "refiner"),
                        identity=optional_package(root, w.identity, "identity"))

    @classmethod
    def load(cls, root: Path, generator: str, encoder: str | None,
             device: str = "auto", half: bool | None = None,
             refiner: str | None = None, identity: str | None = None) -> Chain:
        """Load the packages; the encoder must have been trained against this generator.

        `half`: float16 generator and refiner; None picks it on CUDA only (default_half).
        `refiner`: a refiner package, or None for none; `identity` likewise (the sitter
        memory's descriptor; without it the stream remembers pictures, not sitters).
        """
        dev = pick_device(device)
        half = default_half(dev) if half is None else half
        g, gm = weights.load_module(root, generator, "generator")
        guard = weights.load_guard(root, generator, gm)
        e, em = None, None
        if encoder:
            e, em = weights.load_module(root, encoder, "encoder")
            if em.get("generator_tensors_sha256") != gm["tensors_sha256"]:
                raise weights.WeightsError(
                    f"{root / encoder}: this encoder was trained for generator "
                    f"{str(em.get('generator_tensors_sha256'))[:16]}..., not for {generator} "
                    f"({gm['tensors_sha256'][:16]}...); train one with `passersby train "
                    f"encoder --weights {generator}` or set weights.encoder")
            e = prepare(e, dev)
        r, rm = None, None
        if refiner:
            try:
                r, rm = weights.load_module(root, refiner, "refiner")
            except weights.WeightsError as err:
                raise weights.WeightsError(f"{err} (weights.refiner = {refiner!r}; set it to "
                                           f"null to play without the refiner)") from None
            r = prepare(r, dev, half)
        reader = Reader.load(root, identity, dev) if identity else None
        return cls(prepare(g, dev, half), e, dev, gm, em, half, r, rm, reader, guard)

    @torch.inference_mode()
    def generate(self, z: np.ndarray) -> torch.Tensor:
        """z [N,nz] f32 -> images [N,3,S,S] f32 -1..1 on the chain's device."""
        x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(self.device)
        out = self.generator(x.half() if self.half else x)
        return out.float().contiguous()

    @torch.inference_mode()
    def refine(self, images: torch.Tensor) -> torch.Tensor:
        """G's images [N,3,S,S] f32 -1..1 -> [N,3,4S,4S] f32 -1..1 on the chain's device;
        the images unchanged when there is no refiner.

        On the CPU one image per forward pass: R's 256 px activations outgrow the caches,
        so a batch costs more per image, not less (bench/refiner.py); and a batched
        picture is then bit for bit the live stream's."""
        if self.refiner is None:
            return images
        x = images.to(self.device)
        x = x.half() if self.half else x.float()
        step = len(x) if self.device.type == "cuda" else REFINE_CPU_BATCH
        out = torch.cat([self.refiner(x[i:i + step]) for i in range(0, len(x), step)])
        return out.float().clamp_(-1, 1).contiguous()

    def show(self, images: torch.Tensor) -> np.ndarray:
        """G's images [N,3,S,S] f32 -1..1 -> what the screen shows: [N,S',S',3] uint8,
        refined (S' = 4S) when the chain has a refiner, else S' = S."""
        return to_uint8(self.refine(images))

    def generate_batch(self, z: np.ndarray, batch: int = 64) -> np.ndarray:
        """z [N,nz] f32 -> shown images [N,S',S',3] uint8 (refined when R is on), `batch`
        latents per forward pass.

        For independent latents (audits, renders, one stream per screen); the live
        feedback stream is sequential and uses generate().
        """
        out = [self.show(self.generate(z[i:i + batch])) for i in range(0, len(z), batch)]
        s = self.shown_size
        return np.concatenate(out) if out else np.zeros((0, s, s, 3), np.uint8)

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> np.ndarray:
        """images [N,3,S,S] f32 -1..1 -> z [N,nz] f32 (numpy)."""
        if self.encoder is None:
            raise RuntimeError("no encoder loaded; set weights.encoder")
        return self.encoder(images.float().to(self.device)).float().cpu().numpy()


def optional_package(root: Path, name: str | None, key: str) -> str | None:
    """What to load for config value `weights.<key> = name` (refiner, identity): None
    when off (null or ""); None, with one warning, when it is the default and that is
    not there (a clone before the refiner is made; a player-only install without the
    identity reader's packages). Any other name is returned, so a missing or corrupt
    one fails the start clearly."""
    if not name:
        return None
    if weights.optional_absent(root, name, key):
        log.warning("%s: the default %s package is not there: %s (%s; null also silences "
                    "this)", root / name, key, weights.OPTIONAL[key][1], weights.make_default(key))
        return None
    return name


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,S,S] f32 -1..1 -> [N,S,S,3] uint8 (top row first)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
