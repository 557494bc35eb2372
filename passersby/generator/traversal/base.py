"""What every traversal mode offers the stream (numpy only: no torch, no GL).

A traversal turns the current latent and this step's K candidate noise draws into
the next latent. The stream draws the noise (counter-based, rng.py), reads the
encoder when `beta` > 0, and lets novelty (and taste) pick a candidate through
`choose`. A mode with inner state (orbit's bodies, journey's path) keeps it in
`get_state`/`set_state`, which the stream puts in its snapshot: a restart resumes
it exactly.
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from passersby.common.config import TraversalConfig

Chooser = Callable[[np.ndarray], int]
LEAP = 8        # an escape from a near repeat moves as far as LEAP ordinary steps at once
LEAP_RHO = 0.7  # ...and at least this far, however slow the walk is set


@dataclass
class StepInfo:
    pull: float = 0.0     # |beta (zhat - z)|: how far the feedback moved z this step
    agree: float = 0.0    # cosine(zhat, z): how much E recognises the current latent
    choice: int = 0       # which candidate noise novelty chose
    escaped: bool = False


def shell(z: np.ndarray) -> np.ndarray:
    """Project [..., nz] onto the sphere of radius sqrt(nz), where N(0, I) concentrates."""
    n = np.linalg.norm(z, axis=-1, keepdims=True)
    return (z * (math.sqrt(z.shape[-1]) / np.maximum(n, 1e-6))).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    """[..., n] -> unit vectors along the last axis (float64)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Traversal:
    """The interface; FeedbackTraversal is the plain case (no inner state)."""

    name = "base"

    def __init__(self, cfg: TraversalConfig, keyframes_per_second: float) -> None:
        self.cfg = cfg
        self.dt = 1.0 / keyframes_per_second

    @property
    def beta(self) -> float:
        """> 0: the step wants the encoder's reading of the current picture."""
        return 0.0

    def noise_size(self, nz: int) -> int:
        """Length of each of the K candidate noise draws per step."""
        return nz

    def window_seconds(self) -> float:
        """Display time within which two keyframes are the same passer-by morphing."""
        return self.cfg.correlation_seconds

    def configure(self, cfg: TraversalConfig) -> None:
        """New parameters (live tuning) for the same mode: the inner state is kept."""
        self.cfg = cfg

    def step(self, z: np.ndarray, noises: np.ndarray, zhat: np.ndarray | None,
             choose: Chooser | None = None, escape: bool = False
             ) -> tuple[np.ndarray, StepInfo]:
        raise NotImplementedError

    last: np.ndarray | None = None  # the latent this mode returned last (None: unknown)

    def moved(self, z: np.ndarray) -> bool:
        """Whether someone else moved the latent since this mode's last step (explore's
        "move", a jump): modes with inner state then rebuild it around the new z."""
        return self.last is not None and not np.array_equal(z, self.last)

    def reset(self) -> None:
        """Forget the inner state (a jump to a fresh latent): rebuilt from z next step."""

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Raises ValueError/KeyError when `arrays` does not fit this mode and size."""

    def to_bytes(self) -> bytes:
        """The inner state as an npz blob ({} -> b"", nothing to keep)."""
        arrays = self.get_state()
        if not arrays:
            return b""
        buf = io.BytesIO()
        np.savez_compressed(buf, mode=np.array(self.name), **arrays)
        return buf.getvalue()

    def load_bytes(self, blob: bytes) -> bool:
        """Resume the inner state; False (nothing changed) when the blob is of another mode."""
        if not blob:
            return False
        with np.load(io.BytesIO(blob), allow_pickle=False) as d:
            if str(d["mode"]) != self.name:
                return False
            self.set_state({k: d[k].copy() for k in d.files if k != "mode"})
        return True


def pick(walk: np.ndarray, choose: Chooser | None) -> int:
    """The candidate [K,nz] that `choose` (novelty, taste) prefers; the first without one."""
    return choose(walk) if choose is not None and len(walk) > 1 else 0
