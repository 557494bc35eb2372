"""Feedback traversal: an Ornstein-Uhlenbeck walk on the prior, steered weakly by
what the encoder reads back from the chain's own (transformed) picture.

    z_{t+1} = rho z_t + sqrt(1 - rho^2) eps_t + beta (shell(E(T(G(z_t)))) - z_t)

rho = exp(-dt / correlation_seconds) sets how fast faces change. The walk alone has
the prior N(0, I) as its stationary law, so it cannot wander off the face manifold;
the feedback term is a drift proportional to the walk's own rate,
beta = feedback * (1 - rho), so it bends the path (motifs recur, the picture
"interprets itself") without ever becoming the loop that collapses into one blob
(see DESIGN.md, "The feedback loop: a known trap"). The encoder's answer is put on
the prior's shell (norm sqrt(nz)) before it pulls, because E extrapolates off the
manifold and its raw norm is not to be trusted.

Novelty (novelty.py) enters twice: each step draws K candidate noises and takes
the one landing in the least-visited region; and a keyframe that nearly repeats a
recent one (fixed point, limit cycle) makes the next step a long leap without
feedback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from passersby.config import TraversalConfig

LEAP = 8  # an escape from a near repeat moves as far as LEAP ordinary steps at once
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


class FeedbackTraversal:
    def __init__(self, cfg: TraversalConfig, keyframes_per_second: float) -> None:
        self.cfg = cfg
        self.dt = 1.0 / keyframes_per_second

    @property
    def rho(self) -> float:
        return math.exp(-self.dt / self.cfg.correlation_seconds)

    @property
    def beta(self) -> float:
        if self.cfg.mode != "feedback":
            return 0.0
        return min(0.5, self.cfg.feedback * (1.0 - self.rho))

    def step(self, z: np.ndarray, noises: np.ndarray, zhat: np.ndarray | None,
             choose: Callable[[np.ndarray], int] | None = None, escape: bool = False
             ) -> tuple[np.ndarray, StepInfo]:
        """z [nz] f32; noises [K,nz] f32 candidate draws; zhat [nz] (the encoder's
        reading) or None; `choose` picks a candidate (novelty), else the first.
        `escape` (a near repeat was seen): one long leap, rho**LEAP, without feedback."""
        rho = min(self.rho ** LEAP, LEAP_RHO) if escape else self.rho
        walk = rho * z[None] + math.sqrt(1.0 - rho * rho) * noises  # [K,nz]
        info = StepInfo(escaped=escape)
        if zhat is not None and self.beta > 0 and not escape:
            target = shell(zhat)
            pull = self.beta * (target - z)
            walk = walk + pull[None]
            info.pull = float(np.linalg.norm(pull))
            info.agree = float(np.dot(target, z) / (np.linalg.norm(z) * math.sqrt(z.size) + 1e-6))
        k = choose(walk) if choose is not None and len(walk) > 1 else 0
        info.choice = k
        return walk[k].astype(np.float32), info
