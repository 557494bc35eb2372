"""Traversal modes: orbit, journey, drift; live switching; resume; escape in every mode."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from passersby.common import config, rng, state
from passersby.common.novelty import NEAR_DUPLICATE, distance, fingerprint
from passersby.generator import audit
from passersby.generator.stream import Stream
from passersby.generator.traversal import modes
from passersby.generator.traversal.drift import DriftTraversal
from passersby.generator.traversal.feedback import FeedbackTraversal
from passersby.generator.traversal.journey import JourneyTraversal
from passersby.generator.traversal.orbit import OrbitTraversal

NZ = 100


def tcfg(mode: str, **sections: dict) -> config.TraversalConfig:
    return config.load(None, {"traversal": {"mode": mode, **sections}}).traversal


def walk(t, z: np.ndarray, steps: int, seed: int = 0, kicks: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Drive a traversal with its own noise (no chain): [steps, nz] latents."""
    r, out = np.random.default_rng(seed), []
    for _ in range(steps):
        n = r.standard_normal((4, t.noise_size(NZ))).astype(np.float32)
        if not kicks:
            n[:, : n.shape[1] // 3] = 0  # orbit: no thermostat kicks (pure dynamics)
        z, _ = t.step(z, n, None, None)
        out.append(z)
    return np.stack(out)


def test_orbit_stays_on_the_shell_and_is_chaotic() -> None:
    z0 = np.random.default_rng(1).standard_normal(NZ).astype(np.float32)
    t = OrbitTraversal(tcfg("orbit"), 4.0)
    zs = walk(t, z0, 2000)
    assert np.allclose(np.linalg.norm(zs, axis=1), math.sqrt(NZ), rtol=1e-4)
    assert np.allclose(np.linalg.norm(t.x, axis=1), 1, atol=1e-9)            # bodies too
    steps = np.linalg.norm(np.diff(zs, axis=0), axis=1)
    assert steps.min() > 0.2 and steps.max() < 3.0  # always moving, never a violent jump

    def separation(gravity: float) -> np.ndarray:
        """Two runs without kicks whose first body differs by 1e-7 at the start."""
        cfg = tcfg("orbit", orbit={"gravity": gravity, "memory_seconds": 600.0})
        a, b = OrbitTraversal(cfg, 4.0), OrbitTraversal(cfg, 4.0)
        za, zb = walk(a, z0, 1, kicks=False)[-1], walk(b, z0, 1, kicks=False)[-1]
        b.x[0] = b.x[0] + 1e-7
        b.x /= np.linalg.norm(b.x, axis=1, keepdims=True)
        return np.linalg.norm(walk(a, za, 800, 5, False) - walk(b, zb, 800, 5, False), axis=1)

    chaotic, free = separation(0.25), separation(0.0)
    assert chaotic[-1] > 1e5 * chaotic[0] and chaotic[-1] > 0.5  # sensitive dependence
    assert free[-1] < 100 * max(free[0], 1e-7)                      # without gravity: not


def test_orbit_stream_keeps_faces_and_never_repeats(chain) -> None:  # type: ignore[no-untyped-def]
    cfg = config.load(None, {"traversal": {"mode": "orbit"}})
    f = audit.run(chain, cfg, 300, seed=0x0B17, face_every=3)
    assert f["near_duplicates"] == 0, f["closest_pairs"]
    assert f["longest_freeze_s"] <= 1.0 and f["diversity"] >= 0.6, f
    assert f["face_rate_stream"] >= 0.85 * f["face_rate_random"], f


def test_orbit_resumes_exactly_from_a_saved_state(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tcfg("orbit")
    a = Stream(chain, cfg, 4.0, seed=31)
    frames = [a.next_frame() for _ in range(12)]
    state.Saver(tmp_path).save(a.snapshot(skip_to=a.step + 4))  # through the JSON file
    frames += [a.next_frame() for _ in range(12)]
    b = Stream(chain, cfg, 4.0, seed=31, saved=state.load(tmp_path))
    assert b.catch_up() == 4 and b.step == 16
    for f, g in zip(frames[16:], [b.next_frame() for _ in range(8)]):
        assert f.step == g.step and np.array_equal(f.z, g.z) and np.array_equal(f.image, g.image)


def test_states_without_a_traversal_field_still_load(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A state file written before modes had inner state (schema 2, no "traversal")."""
    a = Stream(chain, tcfg("orbit"), 4.0, seed=8)
    a.next_frame()
    state.Saver(tmp_path).save(a.snapshot(a.step))
    doc = json.loads((tmp_path / state.CURRENT).read_text())
    del doc["payload"]["traversal"]
    body = json.dumps(doc["payload"], sort_keys=True)
    doc["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    (tmp_path / state.CURRENT).write_text(json.dumps(doc))
    old = state.load(tmp_path)
    assert old is not None and old.traversal == b"" and old.step == 1
    b = Stream(chain, tcfg("orbit"), 4.0, seed=8, saved=old)  # bodies rebuilt around z
    assert np.array_equal(b.z, a.z) and b.next_frame().step == 1


def test_journey_goes_round_the_shell_not_through_the_mush() -> None:
    r = np.random.default_rng(3)
    a, b = (r.standard_normal(NZ).astype(np.float32) for _ in range(2))
    t = JourneyTraversal(tcfg("journey", journey={"seconds": 10.0}), 4.0)  # 40 steps
    t.set_target(b)
    zs = walk(t, a, 60)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    path = np.linalg.norm(zs[:40], axis=1)
    assert min(na, nb) - 1e-4 <= path.min() and path.max() <= max(na, nb) + 1e-4
    norms = path / math.sqrt(NZ)
    assert norms.min() > 0.9 and norms.max() < 1.1                # on the shell all the way
    assert np.array_equal(zs[39], b) and t.arrived and t.legs == 1  # arrives exactly
    assert not np.allclose(zs[40], zs[39]) and np.linalg.norm(zs[59] - b) > 1  # goes on
    u = np.linspace(0, 1, 41)[:, None]
    linear = np.linalg.norm((1 - u) * a + u * b, axis=1) / math.sqrt(NZ)
    assert linear.min() < 0.8 and linear.min() < norms.min() - 0.1  # the blend sinks
    # the path is a continuous curve: no step larger than a few times the average
    steps = np.linalg.norm(np.diff(zs[:40], axis=0), axis=1)
    assert steps.max() < 3 * steps.mean()


def test_journey_onward_picks_the_next_target() -> None:
    t = JourneyTraversal(tcfg("journey", journey={"seconds": 2.0, "then": "onward"}), 4.0)
    zs = walk(t, np.ones(NZ, np.float32), 40)
    assert t.legs == 5 and np.allclose(np.linalg.norm(zs, axis=1) / math.sqrt(NZ), 1, atol=0.1)


def test_journey_in_the_stream_reaches_a_bookmark(chain) -> None:  # type: ignore[no-untyped-def]
    s = Stream(chain, tcfg("feedback"), 4.0, seed=21)
    for _ in range(3):
        s.next_frame()
    target = rng.normal(999, 0, chain.nz)  # e.g. a bookmark's latent
    s.set_traversal(tcfg("journey", journey={"seconds": 3.0}), target=target)  # 12 steps
    frames = [s.next_frame() for _ in range(16)]
    assert [f.step for f in frames] == list(range(3, 19))
    hit = [f for f in frames if np.array_equal(f.z, target)]
    assert len(hit) == 1 and hit[0].step == 3 + 12
    expected = chain.generate_batch(target[None])[0]
    assert np.abs(hit[0].image.astype(int) - expected).max() <= 1
    cfg = tcfg("journey", journey={"target_seed": 999, "target_step": 0, "seconds": 3.0})
    t = Stream(chain, cfg, 4.0, seed=22)  # the target named in the config
    assert any(np.array_equal(t.next_frame().z, target) for _ in range(14))


def test_mode_switch_keeps_step_novelty_and_continuity(chain) -> None:  # type: ignore[no-untyped-def]
    s = Stream(chain, tcfg("feedback"), 4.0, seed=77)
    novelty = s.novelty
    prev = [s.next_frame() for _ in range(5)][-1]
    for mode in ("orbit", "drift", "journey", "feedback"):
        s.set_traversal(tcfg(mode))
        assert s.traversal.name == mode and s.novelty is novelty
        for _ in range(4):  # goes on from where it was: no cut to a stranger
            f = s.next_frame()
            cos = float(f.z @ prev.z / (np.linalg.norm(f.z) * np.linalg.norm(prev.z)))
            assert f.step == prev.step + 1 and cos > 0.6, (mode, f.step, cos)
            prev = f
    assert prev.step == 5 + 4 * 4 - 1
    s.set_traversal(tcfg("orbit"))
    s.next_frame()
    bodies = s.traversal
    x = bodies.x.copy()
    s.set_traversal(tcfg("orbit", orbit={"gravity": 0.5}))  # live tuning: same bodies
    assert s.traversal is bodies and np.array_equal(bodies.x, x)
    assert s.novelty.window == round(1 / 0.3 * 4)


def test_drift_is_a_slow_walk_on_the_prior() -> None:
    d, fb = DriftTraversal(tcfg("drift"), 4.0), FeedbackTraversal(tcfg("feedback"), 4.0)
    assert d.beta == 0 and fb.rho < d.rho < 1
    zs = walk(d, np.zeros(NZ, np.float32), 4000)
    assert 9.0 < np.linalg.norm(zs[1000:], axis=1).mean() < 11.0  # |z| ~ sqrt(nz)
    assert np.abs(zs[1000:].std() - 1) < 0.1                        # N(0, I) marginals
    step = np.linalg.norm(np.diff(zs[1000:], axis=0), axis=1).mean()
    assert step < 0.8 * math.sqrt(2 * (1 - fb.rho)) * math.sqrt(NZ)  # slower than feedback


@pytest.mark.parametrize("mode", sorted(modes.MODES))
def test_every_mode_escapes_a_frozen_stream(chain, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Freeze the walk (dt = 0) and watch novelty detect the repeat and leap out."""
    cfg = dataclasses.replace(tcfg(mode), feedback=0.0)
    s = Stream(chain, cfg, 4.0, seed=5)
    s.traversal.dt = 0.0
    if mode == "journey":
        s.traversal.walk.dt = 0.0
    w = s.novelty.window
    frames = [s.next_frame() for _ in range(w + 30)]
    assert s.novelty.repeats > 0, mode
    fp = fingerprint(np.stack([f.image for f in frames]))
    far = [float(distance(fp[i], fp[j])) for i in range(len(fp)) for j in range(i + w + 1, len(fp))]
    assert min(far) >= NEAR_DUPLICATE, f"{mode}: a repeat was shown"


@pytest.mark.parametrize("mode", ["orbit", "journey"])
def test_a_hand_move_is_followed(mode: str) -> None:
    """Explore's "move" sets the stream's latent: modes with inner state go on from it."""
    t = modes.make(tcfg(mode), 4.0)
    z = walk(t, np.ones(NZ, np.float32), 5)[-1]
    moved = np.random.default_rng(9).standard_normal(NZ).astype(np.float32)
    nxt = walk(t, moved, 1)[-1]
    cos = float(nxt @ moved / (np.linalg.norm(nxt) * np.linalg.norm(moved)))
    assert cos > 0.8 and float(nxt @ z / (np.linalg.norm(nxt) * np.linalg.norm(z))) < 0.5
