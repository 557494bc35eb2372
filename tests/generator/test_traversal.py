"""The feedback stream stays portraits, keeps moving, keeps changing (measured)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from passersby.common import config
from passersby.generator import audit
from passersby.generator.stream import Stream
from passersby.generator.traversal import modes
from passersby.generator.traversal.feedback import FeedbackTraversal, shell

STEPS = 400


@pytest.fixture(scope="module")
def figures(chain) -> dict:  # type: ignore[no-untyped-def]
    return audit.run(chain, config.Config(), STEPS, seed=0x5EED, face_every=2)


def test_stream_stays_on_faces(figures: dict) -> None:
    # The Haar yardstick finds faces in ~0.65 of the generator's own random samples;
    # the stream must hold at least 0.85 of that (a collapsed loop scores ~0).
    assert figures["face_rate_random"] > 0.4, figures
    assert figures["face_rate_stream"] >= 0.85 * figures["face_rate_random"], figures


def test_stream_keeps_moving_and_changing(figures: dict) -> None:
    assert figures["longest_freeze_s"] <= 1.0, figures
    assert figures["change_per_s"] > 0.05 * figures["stranger_change"], figures
    assert figures["diversity"] >= 0.6, figures


def test_stream_is_deterministic_and_resumes_exactly(chain) -> None:  # type: ignore[no-untyped-def]
    cfg = config.Config()
    a = Stream(chain, cfg.traversal, 4.0, seed=99)
    frames = [a.next_frame() for _ in range(6)]
    snap = a.snapshot(skip_to=a.step + 3)  # as a periodic save would write it
    frames += [a.next_frame() for _ in range(9)]
    b = Stream(chain, cfg.traversal, 4.0, seed=99, saved=snap)
    assert b.catch_up() == 3 and b.step == 9
    again = [b.next_frame() for _ in range(6)]
    for f, g in zip(frames[9:], again):
        assert f.step == g.step and np.array_equal(f.image, g.image)
    other = Stream(chain, cfg.traversal, 4.0, seed=100).next_frame()
    assert not np.array_equal(other.image, frames[0].image)


def test_walk_keeps_the_prior_and_feedback_is_a_weak_drift() -> None:
    cfg = config.Config().traversal
    t = FeedbackTraversal(cfg, 4.0)
    assert 0.9 < t.rho < 1 and 0 < t.beta <= cfg.feedback * (1 - t.rho) + 1e-12
    r = np.random.default_rng(0)
    z = r.standard_normal(100).astype(np.float32)
    target = shell(r.standard_normal(100).astype(np.float32))  # a fixed, stubborn reading
    norms = []
    for _ in range(4000):
        z, info = t.step(z, r.standard_normal((1, 100)).astype(np.float32), target)
        norms.append(np.linalg.norm(z))
    # stays on the prior's shell (|z| ~ sqrt(100) = 10) even when E always says the same
    assert 8.5 < np.mean(norms[1000:]) < 11.5 and max(norms) < 14
    # and is pulled toward the reading without becoming it
    cos = float(z @ target / (np.linalg.norm(z) * 10))
    assert 0.1 < cos < 0.95, cos
    drift = modes.make(dataclasses.replace(cfg, mode="drift"), 4.0)   # the drift mode
    assert drift.name == "drift" and drift.beta == 0                  # never reads E


def test_state_from_other_weights_is_detected(chain, caplog) -> None:  # type: ignore[no-untyped-def]
    cfg = config.Config()
    a = Stream(chain, cfg.traversal, 4.0, seed=7)
    a.next_frame()
    snap = dataclasses.replace(a.snapshot(skip_to=a.step + 5), generator_sha256="f" * 64)
    with caplog.at_level("WARNING"):
        b = Stream(chain, cfg.traversal, 4.0, seed=7, saved=snap)
    assert "other weights" in caplog.text
    assert b.step == a.step + 5 and not np.array_equal(b.z, a.z)
