"""Feedback traversal: an Ornstein-Uhlenbeck walk on the prior, steered weakly by
what the encoder reads back from the chain's own (transformed) picture.

    z_{t+1} = rho z_t + sqrt(1 - rho^2) eps_t + beta (shell(E(T(G(z_t)))) - z_t)

rho = exp(-dt / correlation_seconds) sets how fast faces change. The walk alone has
the prior N(0, I) as its stationary law, so it cannot wander off the face manifold;
the feedback term is a drift proportional to the walk's own rate,
beta = feedback * (1 - rho), so it bends the path (motifs recur, the picture
"interprets itself") without ever becoming the loop that collapses into one blob
(README.md, "How it works": the feedback loop). The encoder's answer is put on
the prior's shell (norm sqrt(nz)) before it pulls, because E extrapolates off the
manifold and its raw norm is not to be trusted.

Novelty (novelty.py) enters twice: each step draws K candidate noises and takes
the one landing in the least-visited region; and a keyframe that nearly repeats a
recent one (fixed point, limit cycle) makes the next step a long leap without
feedback.
"""
from __future__ import annotations

import math

import numpy as np

from passersby.generator.traversal.base import (
    LEAP,
    LEAP_RHO,
    Chooser,
    StepInfo,
    Traversal,
    pick,
    shell,
)

__all__ = ["LEAP", "LEAP_RHO", "FeedbackTraversal", "StepInfo", "shell"]


class FeedbackTraversal(Traversal):
    name = "feedback"

    @property
    def correlation_seconds(self) -> float:
        return self.cfg.correlation_seconds

    @property
    def rho(self) -> float:
        return math.exp(-self.dt / self.correlation_seconds)

    @property
    def beta(self) -> float:
        return min(0.5, self.cfg.feedback * (1.0 - self.rho))

    def window_seconds(self) -> float:
        return self.correlation_seconds

    def step(self, z: np.ndarray, noises: np.ndarray, zhat: np.ndarray | None,
             choose: Chooser | None = None, escape: bool = False
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
        k = pick(walk, choose)
        info.choice = k
        return walk[k].astype(np.float32), info
