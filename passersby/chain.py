"""The network chain: G (latent -> portrait) and E (portrait -> latent), on one device.

Inference is made fast once, at load (bench/chain_peak.py measures what pays):
BatchNorm layers are folded into the convolution before them (exact up to float
rounding); on CUDA activations run channels_last (the tensor cores' layout) and
the generator runs in float16 where it holds quality (`half`, checked against
float32 by tests/test_gpu_path.py). The live stream is a
feedback loop, so it is sequential (batch 1); `generate_batch` serves the batched
users (audits, overnight renders, one stream per screen).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from passersby import weights

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("stream.device = 'cuda' but torch sees no CUDA device; "
                           "set stream.device: auto or cpu")
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
    half: bool = False            # generator in float16 (CUDA); outputs stay float32

    @property
    def nz(self) -> int:
        return int(self.generator_manifest["args"]["nz"])

    @property
    def size(self) -> int:
        return int(self.generator_manifest["args"].get("size", 64))

    @classmethod
    def load(cls, root: Path, generator: str, encoder: str | None,
             device: str = "auto", half: bool | None = None) -> "Chain":
        """Load both packages; the encoder must have been trained against this generator.

        `half`: float16 generator; None picks it on CUDA only (default_half).
        """
        dev = pick_device(device)
        half = default_half(dev) if half is None else half
        g, gm = weights.load_module(root, generator, "generator")
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
        return cls(prepare(g, dev, half), e, dev, gm, em, half)

    @torch.inference_mode()
    def generate(self, z: np.ndarray) -> torch.Tensor:
        """z [N,nz] f32 -> images [N,3,S,S] f32 -1..1 on the chain's device."""
        x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(self.device)
        out = self.generator(x.half() if self.half else x)
        return out.float().contiguous()

    def generate_batch(self, z: np.ndarray, batch: int = 64) -> np.ndarray:
        """z [N,nz] f32 -> images [N,S,S,3] uint8, `batch` latents per forward pass.

        For independent latents (audits, renders, one stream per screen); the live
        feedback stream is sequential and uses generate().
        """
        out = [to_uint8(self.generate(z[i:i + batch])) for i in range(0, len(z), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.size, self.size, 3), np.uint8)

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> np.ndarray:
        """images [N,3,S,S] f32 -1..1 -> z [N,nz] f32 (numpy)."""
        if self.encoder is None:
            raise RuntimeError("no encoder loaded; set weights.encoder")
        return self.encoder(images.float().to(self.device)).float().cpu().numpy()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,S,S] f32 -1..1 -> [N,S,S,3] uint8 (top row first)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
