"""Counter-based randomness: the noise at step t is a pure function of (seed, t).

numpy's Philox is keyed by the 128-bit edition seed; the step sits in the second
64-bit word of the 256-bit counter, so each step owns 2**64 draws of its own.
A resumed unit therefore continues exactly, and two editions never share a stream.
"""
from __future__ import annotations

import os

import numpy as np

MASK64 = (1 << 64) - 1


def new_seed() -> int:
    """A fresh 128-bit edition seed from the operating system."""
    return int.from_bytes(os.urandom(16), "little")


def generator(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """An independent numpy Generator for (seed, step, stream)."""
    if not 0 <= seed < 1 << 128:
        raise ValueError(f"seed {seed} is not a 128-bit unsigned integer")
    if step < 0:
        raise ValueError(f"step {step} is negative")
    key = np.array([seed & MASK64, seed >> 64], dtype=np.uint64)
    counter = np.array([0, step & MASK64, stream & MASK64, 0], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=counter))


def normal(seed: int, step: int, n: int, stream: int = 0) -> np.ndarray:
    """Standard normal [n] f32 for (seed, step, stream)."""
    return generator(seed, step, stream).standard_normal(n, dtype=np.float32)
