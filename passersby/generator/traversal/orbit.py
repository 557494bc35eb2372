"""Orbit: bodies attracting each other on the prior's shell; the picture is their mix.

M bodies (positions x_i on the unit sphere of R^nz, velocities v_i tangent to it,
masses m_i = mass_ratio**i) move under softened gravity,

    a_i = G sum_{j != i} m_j (x_j - x_i) / (|x_j - x_i|^2 + eps^2)^(3/2),

projected on the sphere's tangent space, integrated by leapfrog (kick-drift-kick,
`substeps` per keyframe) with the drift renormalising x_i onto the sphere and
transporting v_i to the new tangent space (speed kept): the bodies never leave
the shell. Three or more bodies under mutual attraction are chaotic (a difference
of 1e-7 grows to order 1 in a few minutes: tests/generator/test_modes.py). Once per keyframe
the directions are turned a little and the energy is held,

    v_i <- |v_i| unit(gamma unit(v_i) + sqrt(1 - gamma^2) unit(tangent(xi_i))),
    gamma = exp(-dt / memory_seconds),
    then all v scaled so that kinetic + potential = E* = sum_i m_i speed^2 / 2 + U_ref,

U_ref the potential of bodies REF_DISTANCE apart (as they start): a bound system
that never stalls, never heats up (leapfrog's small energy error is undone too),
and slings faster where bodies pass close. The turning noise xi (the stream's K
counter-based candidate draws, [K, 3, M, nz]) spreads the motion over every
dimension of latent space, so the plane the bodies swing in keeps turning and no
configuration comes back. Novelty (and taste) choose among the K turns by where
each leads: the picture LOOKAHEAD_S seconds ahead.

The displayed latent is sqrt(nz) unit(sum_i w_i x_i) with w_i ~ 1/m_i: the light
bodies, flung about most, show most (the mass-weighted centroid would hide the
chaos: internal forces leave it alone). A sum of nearly orthogonal points of the
sphere, renormalised, is a typical draw of the prior: always a portrait.
An escape from a near repeat leaps every body (like feedback's leap).
The whole state (x, v) is in the stream's snapshot: a restart resumes exactly.
"""
from __future__ import annotations

import math

import numpy as np

from passersby.common.config import TraversalConfig
from passersby.generator.traversal.base import LEAP_RHO, Chooser, StepInfo, Traversal, pick, unit

LOOKAHEAD_S = 2.0  # novelty/taste judge a kick by the picture this far ahead
REF_DISTANCE = 0.75  # chord between bodies as they start (START_SPREAD)
START_SPREAD = 0.6  # bodies start around the current latent, this far off it (tangent units)


def tangent(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[M,n] vectors minus their components along the unit positions x [M,n]."""
    return v - np.sum(v * x, axis=-1, keepdims=True) * x


class OrbitTraversal(Traversal):
    name = "orbit"

    def __init__(self, cfg: TraversalConfig, keyframes_per_second: float) -> None:
        super().__init__(cfg, keyframes_per_second)
        self.x: np.ndarray | None = None  # [M,nz] f64 unit positions
        self.v: np.ndarray | None = None  # [M,nz] f64 tangent velocities, radians/s
        self.last: np.ndarray | None = None  # the latent last returned (not persisted)

    @property
    def masses(self) -> np.ndarray:
        return self.cfg.orbit.mass_ratio ** np.arange(self.cfg.orbit.bodies, dtype=np.float64)

    @property
    def weights(self) -> np.ndarray:
        w = 1.0 / self.masses
        return w / w.sum()

    def noise_size(self, nz: int) -> int:
        return 3 * self.cfg.orbit.bodies * nz  # [kick, start positions, start velocities]

    def window_seconds(self) -> float:
        return 1.0 / self.cfg.orbit.speed  # the time a body takes to travel one radian

    def configure(self, cfg: TraversalConfig) -> None:
        if cfg.orbit.bodies != self.cfg.orbit.bodies:
            self.reset()
        self.cfg = cfg

    def reset(self) -> None:
        self.x = self.v = None
        self.last = None

    def display(self, x: np.ndarray) -> np.ndarray:
        """Bodies [..., M, nz] -> displayed latent [..., nz] f32 on the shell sqrt(nz)."""
        mix = np.tensordot(self.weights, x, axes=([0], [-2])) if x.ndim == 2 else \
            np.einsum("m,kmn->kn", self.weights, x)
        return (unit(mix) * math.sqrt(x.shape[-1])).astype(np.float32)

    def accel(self, x: np.ndarray) -> np.ndarray:
        """Softened gravity on the sphere: [M,nz] -> tangent accelerations [M,nz]."""
        o = self.cfg.orbit
        d = x[None, :, :] - x[:, None, :]                        # [M,M,nz]: x_j - x_i
        r2 = np.einsum("ijn,ijn->ij", d, d) + o.softening ** 2   # [M,M]
        f = o.gravity * self.masses[None, :] / r2 ** 1.5          # [M,M]; d_ii = 0
        return tangent(np.einsum("ij,ijn->in", f, d), x)

    def potential(self, x: np.ndarray) -> float:
        """Softened gravitational energy of bodies x [M,nz]."""
        o, m = self.cfg.orbit, self.masses
        d2 = np.sum((x[:, None] - x[None]) ** 2, axis=-1) + o.softening ** 2      # [M,M]
        return float(-0.5 * o.gravity * np.sum(np.triu(np.outer(m, m) / np.sqrt(d2), 1)) * 2)

    def target_energy(self) -> float:
        """Kinetic energy at `speed` each plus the potential of bodies REF_DISTANCE apart
        (as they start): bound, so they keep falling past each other; closer they sling."""
        o, m = self.cfg.orbit, self.masses
        pot = -o.gravity * np.sum(np.triu(np.outer(m, m), 1)) / math.hypot(REF_DISTANCE,
                                                                            o.softening)
        return float(0.5 * np.sum(m) * o.speed ** 2 + pot)

    def energetic(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Velocities [..., M, nz] scaled so that kinetic + potential = target_energy."""
        m, floor = self.masses, 0.5 * np.sum(self.masses) * (0.25 * self.cfg.orbit.speed) ** 2
        need = max(self.target_energy() - self.potential(x), floor)
        kin = 0.5 * np.sum(m[:, None] * v * v, axis=(-2, -1), keepdims=True)
        return v * np.sqrt(need / np.maximum(kin, 1e-12))

    def _start(self, z: np.ndarray, pos: np.ndarray, vel: np.ndarray) -> None:
        """Bodies around the current latent (so the picture goes on from it)."""
        c = unit(z)[None]                                        # [1,nz]
        self.x = unit(c + START_SPREAD * unit(tangent(pos.astype(np.float64), c)))
        self.v = self.energetic(self.x, unit(tangent(vel.astype(np.float64), self.x)))

    def _leapfrog(self) -> None:
        assert self.x is not None and self.v is not None
        h = self.dt / self.cfg.orbit.substeps
        x, v = self.x, self.v
        a = self.accel(x)
        for _ in range(self.cfg.orbit.substeps):
            v = v + 0.5 * h * a
            x = unit(x + h * v)
            speed = np.linalg.norm(v, axis=-1, keepdims=True)
            v = tangent(v, x)                                    # transport to the new tangent
            v *= speed / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
            a = self.accel(x)
            v = v + 0.5 * h * a
        self.x, self.v = x, v

    def step(self, z: np.ndarray, noises: np.ndarray, zhat: np.ndarray | None,
             choose: Chooser | None = None, escape: bool = False
             ) -> tuple[np.ndarray, StepInfo]:
        """z [nz] (used only to start); noises [K, 3*M*nz] -> next displayed latent."""
        o, nz = self.cfg.orbit, z.size
        n = noises.reshape(len(noises), 3, o.bodies, nz).astype(np.float64) / math.sqrt(nz)
        if self.x is None or self.v is None or self.moved(z):  # e.g. explore's "move"
            self._start(z, n[0, 1], n[0, 2])
        assert self.x is not None and self.v is not None
        info = StepInfo(escaped=escape)
        if escape:  # leap every body away, then go on moving
            xs = unit(LEAP_RHO * self.x[None] + math.sqrt(1 - LEAP_RHO ** 2) * n[:, 0])
            k = pick(self.display(xs), choose)
            self.x = xs[k]
            self.v = self.energetic(self.x, unit(tangent(self.v, self.x)))
        else:
            gamma = math.exp(-self.dt / o.memory_seconds)
            speed = np.linalg.norm(self.v, axis=-1, keepdims=True)             # [M,1]
            turn = np.stack([unit(tangent(e, self.x)) for e in n[:, 0]])       # [K,M,nz]
            vs = self.energetic(self.x, speed * unit(
                gamma * unit(self.v)[None] + math.sqrt(1 - gamma ** 2) * turn))
            ahead = unit(self.x[None] + LOOKAHEAD_S * vs)
            k = pick(self.display(ahead), choose)
            self.v = vs[k]
        info.choice = k
        self._leapfrog()
        self.last = self.display(self.x)
        return self.last.copy(), info

    def get_state(self) -> dict[str, np.ndarray]:
        return {} if self.x is None or self.v is None else {"x": self.x, "v": self.v}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        x, v = arrays["x"].astype(np.float64), arrays["v"].astype(np.float64)
        if x.shape != v.shape or x.ndim != 2 or x.shape[0] != self.cfg.orbit.bodies:
            raise ValueError(f"orbit state of shape {x.shape}, not {self.cfg.orbit.bodies} bodies")
        self.x, self.v = x, v
