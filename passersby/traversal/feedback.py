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
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from passersby.config import TraversalConfig


@dataclass
class StepInfo:
    pull: float = 0.0     # |beta (zhat - z)|: how far the feedback moved z this step
    agree: float = 0.0    # cosine(zhat, z): how much E recognises the current latent


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

    def step(self, z: np.ndarray, noise: np.ndarray, zhat: np.ndarray | None
             ) -> tuple[np.ndarray, StepInfo]:
        """z, noise [nz] f32; zhat [nz] f32 (the encoder's reading) or None -> next z."""
        rho = self.rho
        nxt = rho * z + math.sqrt(1.0 - rho * rho) * noise
        info = StepInfo()
        if zhat is not None and self.beta > 0:
            target = shell(zhat)
            pull = self.beta * (target - z)
            nxt = nxt + pull
            info.pull = float(np.linalg.norm(pull))
            info.agree = float(np.dot(target, z) / (np.linalg.norm(z) * math.sqrt(z.size) + 1e-6))
        return nxt.astype(np.float32), info
