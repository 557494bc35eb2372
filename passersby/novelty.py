"""Novelty memory: where the stream has been, so it goes elsewhere and never loops.

Two bounded parts (numpy only; together ~200 KB, whatever the running time):
- visits: a 16-bit SimHash of the latent (signs of 16 fixed random projections)
  names one of 65,536 cones of latent space; a saturating uint16 count per cone
  remembers how often the stream passed there. Each step the traversal draws a
  few candidate noises and takes the one that lands in the least-visited cone
  (ties: the first, so an unvisited space is walked exactly like the plain prior).
- recent: fingerprints of the last RING keyframes. A new keyframe that is a near
  duplicate of one older than the morph window is a fixed point or a limit cycle;
  the stream drops that keyframe unseen and leaps away (stream.py, feedback.py).

Perceptual measure (shared with the audit): 16x16 grey thumbnail, normalised to
zero mean and unit contrast; distance = RMS difference (identical 0, unrelated
faces ~1.2). NEAR_DUPLICATE = 0.12 is below the 1st percentile of the distance
between two consecutive keyframes of the default stream (0.13 at 4 keyframes/s).
"""
from __future__ import annotations

import io
import zlib

import numpy as np

BITS = 16
RING = 1024
NEAR_DUPLICATE = 0.12
FP_SCALE = 24.0  # fingerprint int8 = round(normalised thumbnail * FP_SCALE)


def fingerprint(images: np.ndarray) -> np.ndarray:
    """[N,H,W,3] or [H,W,3] uint8 -> [N,256] or [256] f32 normalised 16x16 grey thumbnails."""
    one = images.ndim == 3
    x = images[None] if one else images
    grey = x.astype(np.float32).mean(axis=3) / 255.0
    n, h, w = grey.shape
    t = grey.reshape(n, 16, h // 16, 16, w // 16).mean(axis=(2, 4)).reshape(n, 256)
    t = (t - t.mean(axis=1, keepdims=True)) / (t.std(axis=1, keepdims=True) + 0.02)
    return t[0] if one else t


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS difference of fingerprints ([...,256] each, broadcast)."""
    return np.sqrt(np.mean((a - b) ** 2, axis=-1))


class Novelty:
    def __init__(self, nz: int, window: int, plane_seed: int = 0x9A55E85B) -> None:
        self.window = window  # steps: younger keyframes are part of the same morph
        self.planes = np.random.default_rng(plane_seed).standard_normal((BITS, nz)).astype(
            np.float32)
        self.weights = (1 << np.arange(BITS)).astype(np.int64)
        self.visits = np.zeros(1 << BITS, np.uint16)
        self.ring = np.zeros((RING, 256), np.int8)
        self.ring_steps = np.full(RING, -1, np.int64)
        self.repeats = 0  # near duplicates detected (escapes triggered)

    def cells(self, z: np.ndarray) -> np.ndarray:
        """[K,nz] -> [K] cone indices."""
        return ((z @ self.planes.T) > 0).astype(np.int64) @ self.weights

    def choose(self, candidates: np.ndarray) -> int:
        """Index of the candidate latent [K,nz] in the least-visited cone."""
        return int(np.argmin(self.visits[self.cells(candidates)]))

    def visit(self, z: np.ndarray) -> None:
        c = int(self.cells(z[None])[0])
        if self.visits[c] < np.iinfo(np.uint16).max:
            self.visits[c] += 1

    def observe(self, step: int, image: np.ndarray) -> bool:
        """Remember keyframe `step`; True if it nearly repeats an older recent one."""
        fp = fingerprint(image)
        old = (self.ring_steps >= 0) & (self.ring_steps < step - self.window)
        repeat = False
        if old.any():
            ring = self.ring[old].astype(np.float32) / FP_SCALE
            repeat = bool(distance(ring, fp).min() < NEAR_DUPLICATE)
        slot = step % RING
        self.ring[slot] = np.clip(np.round(fp * FP_SCALE), -127, 127).astype(np.int8)
        self.ring_steps[slot] = step
        self.repeats += repeat
        return repeat

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, visits=self.visits, ring=self.ring, ring_steps=self.ring_steps,
                 repeats=np.array([self.repeats], np.int64))
        return zlib.compress(buf.getvalue(), 6)

    def load_bytes(self, blob: bytes) -> None:
        with np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False) as d:
            if d["visits"].shape != self.visits.shape or d["ring"].shape != self.ring.shape:
                raise ValueError("novelty memory of another layout")
            self.visits, self.ring = d["visits"].copy(), d["ring"].copy()
            self.ring_steps, self.repeats = d["ring_steps"].copy(), int(d["repeats"][0])

    @property
    def nbytes(self) -> int:
        return self.visits.nbytes + self.ring.nbytes + self.ring_steps.nbytes
