"""The network chain: G (latent -> portrait) and E (portrait -> latent), on one device."""
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


@dataclass
class Chain:
    generator: nn.Module
    encoder: nn.Module | None
    device: torch.device
    generator_manifest: dict
    encoder_manifest: dict | None = None

    @property
    def nz(self) -> int:
        return int(self.generator_manifest["args"]["nz"])

    @property
    def size(self) -> int:
        return int(self.generator_manifest["args"].get("size", 64))

    @classmethod
    def load(cls, root: Path, generator: str, encoder: str | None,
             device: str = "auto") -> "Chain":
        """Load both packages; the encoder must have been trained against this generator."""
        dev = pick_device(device)
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
            e = e.to(dev)
        return cls(g.to(dev), e, dev, gm, em)

    @torch.inference_mode()
    def generate(self, z: np.ndarray) -> torch.Tensor:
        """z [N,nz] f32 -> images [N,3,S,S] f32 -1..1 on the chain's device."""
        return self.generator(torch.from_numpy(np.ascontiguousarray(z)).to(self.device))

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> np.ndarray:
        """images [N,3,S,S] f32 -1..1 -> z [N,nz] f32 (numpy)."""
        if self.encoder is None:
            raise RuntimeError("no encoder loaded; set weights.encoder")
        return self.encoder(images).float().cpu().numpy()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,S,S] f32 -1..1 -> [N,S,S,3] uint8 (top row first)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
