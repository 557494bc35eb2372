"""The copy guard: the stream never shows a near copy of one of its world's training portraits.

A world trained on a few hundred paintings may redraw one of them (or its mirror) now and
then: `passersby train measure` counts a sample as memorised when it is closer to a crop
than the crops are to their own near copies (shifted a pixel, re-lit by a tenth: the 99th
percentile of those distances, measured per dataset). The guard carries that measure into
the player: the crops' features travel with the generator package (`copy_guard` in its
manifest, `copies.safetensors` beside the weights; made by `passersby train copies`), and
a keyframe closer than the threshold to any crop or mirrored crop is dropped unseen and
the walk leaps away, as a repeated picture is (stream.py).

Feature (the measure's own, `features`): the picture area-averaged to 32x32 RGB, each
picture zero mean and unit std over its 3,072 values; distance = RMS difference. The
crops' features are stored int8, one scale per crop (127 / its largest value), with each
crop's own quantisation error (RMS, measured at build time): by the triangle inequality
the distance to the stored code is within that error of the distance to the true feature,
so a keyframe is dropped when its distance to a code is under threshold + that crop's
error. Every sample the measure calls memorised is dropped (never fewer); a few just
above the threshold are too (metcrowd64b: 0.2 % of 2,000 samples dropped, 0.05 %
memorised). A query is the keyframe and its mirror against every crop: 2 x 1,090 x 3,072
multiply-adds on metcrowd64b's crops, ~3.6 ms a keyframe in the live chain on this CPU
(bench/refiner.py); 3.3 MB in the package, 13 MB in memory.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from passersby.common.folders import is_file_name

SIDE = 32            # the measure's feature: SIDE x SIDE RGB
FILE = "copies.safetensors"
MAX_BYTES = 256 << 20  # 20,000 crops; a bigger file is not a guard


def features(images: np.ndarray, side: int = SIDE) -> np.ndarray:
    """[N,S,S,3] uint8 -> [N, side*side*3] f32, each row zero mean, unit std."""
    n, s = images.shape[0], images.shape[1]
    x = images.astype(np.float32)
    if s != side:
        if s % side == 0:                                  # exact area average
            k = s // side
            x = x.reshape(n, side, k, side, k, 3).mean((2, 4))
        else:
            x = np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.BOX),
                                     np.float32) for im in images])
    x = x.reshape(n, -1)
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True) + 1e-6
    return x


def quantise(f: np.ndarray) -> dict[str, np.ndarray]:
    """Features [M,D] f32 -> the stored guard: int8 codes, per-row scale, per-row RMS error."""
    scale = (127.0 / np.maximum(np.abs(f).max(1), 1e-6)).astype(np.float32)
    codes = np.clip(np.round(f * scale[:, None]), -127, 127).astype(np.int8)
    error = np.sqrt(((codes / scale[:, None] - f) ** 2).mean(1)).astype(np.float32)
    return {"codes": codes, "scale": scale, "error": error}


@dataclass
class Guard:
    """The crops' features (dequantised, f32 [M,D]) and what counts as a copy."""
    crops: np.ndarray
    error: np.ndarray      # [M] each stored crop's distance from its true feature
    threshold: float

    def __post_init__(self) -> None:
        self.sq = (self.crops * self.crops).sum(1)  # [M] |crop|^2

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], threshold: float, where: str) -> Guard:
        """Check the stored arrays (a damaged or hostile file is a ValueError naming what)."""
        codes, scale, error = t.get("codes"), t.get("scale"), t.get("error")
        if codes is None or scale is None or error is None or len(t) != 3:
            raise ValueError(f"{where}: expected the tensors codes, scale and error, "
                             f"found {sorted(t)[:8]}")
        m = codes.shape[0] if codes.ndim == 2 else -1
        if codes.dtype != np.int8 or codes.shape != (m, SIDE * SIDE * 3) or m < 1:
            raise ValueError(f"{where}: codes {codes.dtype} {codes.shape}: expected int8 "
                             f"[crops, {SIDE * SIDE * 3}]")
        for name, v in (("scale", scale), ("error", error)):
            if v.dtype != np.float32 or v.shape != (m,) or not np.isfinite(v).all():
                raise ValueError(f"{where}: {name} {v.dtype} {v.shape}: expected {m} finite "
                                 f"float32 values")
        if not (scale > 0).all() or not ((error >= 0) & (error < 1)).all():
            raise ValueError(f"{where}: a scale <= 0 or an error outside [0, 1)")
        if not (math.isfinite(threshold) and 0 < threshold < 2):
            raise ValueError(f"{where}: threshold {threshold!r}: expected a number in (0, 2)")
        return cls(codes.astype(np.float32) / scale[:, None], error, float(threshold))

    def nearest(self, image: np.ndarray) -> float:
        """How far image [S,S,3] uint8 (or its mirror) is from being a copy: the smallest
        distance to a stored crop, less that crop's error (< threshold: a copy)."""
        q = features(np.stack([image, image[:, ::-1]]))
        sq = (q * q).sum(1)[:, None] + self.sq[None] - 2.0 * q @ self.crops.T
        d = np.sqrt(np.maximum(sq, 0.0) / q.shape[1]) - self.error[None]
        return float(d.min())

    def copies(self, image: np.ndarray) -> bool:
        return self.nearest(image) < self.threshold


def load(folder: Path, entry: object) -> Guard:
    """The guard a generator manifest's `copy_guard` entry names, from the package `folder`.
    Raises ValueError (the caller names the fix) for a malformed entry or file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    where = folder / "manifest.json"
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or \
            not isinstance(entry.get("sha256"), str) or \
            not isinstance(entry.get("threshold"), (int, float)) or \
            isinstance(entry.get("threshold"), bool):
        raise ValueError(f"{where}: copy_guard = {str(entry)[:120]}: expected an object with "
                         f"file and sha256 (text) and threshold (a number)")
    name = entry["file"]
    if not is_file_name(name):
        raise ValueError(f"{where}: copy_guard file = {name[:80]!r}: must be a file name "
                         f"inside the package folder (such as {FILE}), not a path")
    path = folder / name
    try:
        with open(path, "rb") as f:
            blob = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ValueError(f"{path}: the copy guard's file is missing") from None
    except OSError as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    if len(blob) > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES >> 20} MiB")
    got = hashlib.sha256(blob).hexdigest()
    if got != entry["sha256"]:
        raise ValueError(f"{path}: sha256 {got[:16]}... does not match the manifest's "
                         f"{entry['sha256'][:16]}...: the file is corrupt or another world's")
    try:
        tensors = load(blob)
    except (SafetensorError, ValueError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({str(e)[:200]})") from None
    return Guard.from_tensors(tensors, entry["threshold"], str(path))
