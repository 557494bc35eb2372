"""Journey: from one place to another along the prior's shell, through portraits only.

The straight blend (1 - u) a + u b of two latents sinks to |z| ~ sqrt(nz / 2) half way
(two nearly orthogonal vectors of length sqrt(nz)): far inside the shell where the
generator was never trained, which is where the mush is. The journey goes along the
great circle instead (spherical interpolation), with the radius blended between the
two ends' norms, so every point of the path has the norm of a typical prior draw:

    p(u)  = slerp(a/|a|, b/|b|, u)                  (unit; u = 0..1 over `seconds`)
    z(u)  = ((1 - u) |a| + u |b|) unit(p(u) + wander sin(pi u) tangent_p(w) / sqrt(nz))

w is an Ornstein-Uhlenbeck wander (time constant traversal.correlation_seconds) drawn
from the stream's K candidate noises, bent by the encoder's reading like the
feedback walk (w += beta (shell(E(T(G(z)))) - z)); sin(pi u) makes it vanish at both
ends, so the path leaves a exactly and arrives at b exactly. Novelty (and taste)
choose among the K wanders. On arrival the stream goes on as feedback (then:
feedback) or travels onward to a fresh random place (then: onward): it never stops.
An escape from a near repeat leaps like feedback and sets off again toward b.
"""
from __future__ import annotations

import math

import numpy as np

from passersby.common.config import TraversalConfig
from passersby.generator.traversal.base import (
    LEAP_RHO,
    Chooser,
    StepInfo,
    Traversal,
    pick,
    shell,
    unit,
)
from passersby.generator.traversal.feedback import FeedbackTraversal


def slerp(a: np.ndarray, b: np.ndarray, u: float) -> np.ndarray:
    """Unit vectors a, b [n] -> the unit vector a fraction u along the great circle."""
    omega = math.acos(float(np.clip(np.dot(a, b), -1.0, 1.0)))
    if omega < 1e-6:
        return a.copy()
    s = math.sin(omega)
    return (math.sin((1 - u) * omega) * a + math.sin(u * omega) * b) / s


class JourneyTraversal(Traversal):
    name = "journey"

    def __init__(self, cfg: TraversalConfig, keyframes_per_second: float) -> None:
        super().__init__(cfg, keyframes_per_second)
        self.walk = FeedbackTraversal(cfg, keyframes_per_second)  # the wander and what follows
        self.target: np.ndarray | None = None  # asked-for destination, used at the next start
        self.reset()

    def reset(self) -> None:
        self.a: np.ndarray | None = None   # [nz] f64 where this leg began
        self.b: np.ndarray | None = None   # [nz] f64 where it goes
        self.w: np.ndarray | None = None   # [nz] f64 wander
        self.u = 0.0                       # progress 0..1
        self.last = None                   # the latent returned last (not persisted)
        self.arrived = False
        self.legs = 0                      # legs completed

    @property
    def beta(self) -> float:
        return self.walk.beta

    def noise_size(self, nz: int) -> int:
        return 2 * nz  # [wander/walk, next random destination]

    def window_seconds(self) -> float:
        return max(self.cfg.correlation_seconds, 0.75 * self.cfg.journey.seconds)

    def configure(self, cfg: TraversalConfig) -> None:
        self.cfg = cfg
        self.walk.configure(cfg)

    def set_target(self, z: np.ndarray | None) -> None:
        """Go to `z` [nz] from wherever the stream is at its next step (None: a random place)."""
        self.target = None if z is None else np.asarray(z, np.float64).copy()
        self.reset()

    def point(self, u: float, w: np.ndarray) -> np.ndarray:
        """Path at progress u with wanders w [K,nz] -> latents [K,nz] f32."""
        assert self.a is not None and self.b is not None
        if u >= 1.0:
            return np.repeat(self.b[None], len(w), axis=0).astype(np.float32)
        p = slerp(unit(self.a), unit(self.b), u)[None]                     # [1,nz]
        off = w - np.sum(w * p, axis=-1, keepdims=True) * p                 # tangent at p
        bend = self.cfg.journey.wander * math.sin(math.pi * u) / math.sqrt(w.shape[-1])
        radius = (1 - u) * np.linalg.norm(self.a) + u * np.linalg.norm(self.b)
        return (radius * unit(p + bend * off)).astype(np.float32)

    def _leg(self, z: np.ndarray, target: np.ndarray) -> None:
        self.a, self.b = z.astype(np.float64), target.astype(np.float64)
        self.w, self.u, self.arrived = np.zeros_like(self.a), 0.0, False

    def step(self, z: np.ndarray, noises: np.ndarray, zhat: np.ndarray | None,
             choose: Chooser | None = None, escape: bool = False
             ) -> tuple[np.ndarray, StepInfo]:
        """z [nz]; noises [K, 2 nz] -> next latent on the path (or beyond it)."""
        nz = z.size
        eps, fresh = noises[:, :nz].astype(np.float64), shell(noises[0, nz:])
        if self.a is None:
            self._leg(z, self.target if self.target is not None else fresh)
        elif self.moved(z) and not self.arrived:  # moved by hand: set off again from there
            self._leg(z, self.b)
        if self.arrived and self.cfg.journey.then == "onward":
            self._leg(z, fresh)
        if self.arrived:
            return self.walk.step(z, noises[:, :nz], zhat, choose, escape)
        assert self.w is not None and self.b is not None
        info = StepInfo(escaped=escape)
        if escape:  # leap away (as feedback does), then set off again toward b
            leaps = LEAP_RHO * z[None] + math.sqrt(1 - LEAP_RHO ** 2) * eps
            info.choice = pick(leaps.astype(np.float32), choose)
            self._leg(leaps[info.choice], self.b)
            self.last = leaps[info.choice].astype(np.float32)
            return self.last.copy(), info
        rho = self.walk.rho
        ws = rho * self.w[None] + math.sqrt(1 - rho * rho) * eps              # [K,nz]
        if zhat is not None and self.beta > 0:
            pull = self.beta * (shell(zhat).astype(np.float64) - z)
            ws = ws + pull[None]
            info.pull = float(np.linalg.norm(pull))
        self.u = min(1.0, self.u + self.dt / self.cfg.journey.seconds)
        self.u = 1.0 if self.u > 1.0 - 1e-9 else self.u  # float sums: arrive on time
        zs = self.point(self.u, ws)
        info.choice = pick(zs, choose)
        self.w = ws[info.choice]
        if self.u >= 1.0:
            self.arrived, self.legs = True, self.legs + 1
        self.last = zs[info.choice].copy()
        return zs[info.choice], info

    def get_state(self) -> dict[str, np.ndarray]:
        if self.a is None or self.b is None or self.w is None:
            return {} if self.target is None else {"target": self.target}
        out = {"a": self.a, "b": self.b, "w": self.w,
               "progress": np.array([self.u, float(self.arrived), float(self.legs)])}
        return out if self.target is None else {**out, "target": self.target}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.reset()
        self.target = arrays["target"].astype(np.float64) if "target" in arrays else None
        if "a" in arrays:
            self.a, self.b, self.w = (arrays[k].astype(np.float64) for k in ("a", "b", "w"))
            u, arrived, legs = (float(v) for v in arrays["progress"])
            self.u, self.arrived, self.legs = u, bool(arrived), int(legs)
