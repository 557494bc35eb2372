from __future__ import annotations

import dataclasses

import numpy as np

from passersby import config, rng
from passersby.novelty import NEAR_DUPLICATE, Novelty, distance, fingerprint
from passersby.stream import Stream


def faces(chain, n: int, seed: int = 3) -> np.ndarray:  # type: ignore[no-untyped-def]
    from passersby.chain import to_uint8

    return to_uint8(chain.generate(np.stack([rng.normal(seed, k, chain.nz) for k in range(n)])))


def test_fingerprint_distance_separates_people(chain) -> None:  # type: ignore[no-untyped-def]
    ims = faces(chain, 32)
    fp = fingerprint(ims)
    assert fp.shape == (32, 256) and distance(fp[0], fingerprint(ims[0])) == 0
    d = [float(distance(fp[i], fp[j])) for i in range(32) for j in range(i + 1, 32)]
    assert min(d) > 2 * NEAR_DUPLICATE, min(d)
    noisy = np.clip(ims[0].astype(int) + np.random.default_rng(0).integers(-3, 4, ims[0].shape),
                    0, 255).astype(np.uint8)
    assert distance(fp[0], fingerprint(noisy)) < NEAR_DUPLICATE / 2


def test_observe_flags_repeats_only_outside_the_window(chain) -> None:  # type: ignore[no-untyped-def]
    a, b = faces(chain, 2)
    n = Novelty(100, window=5)
    assert not n.observe(0, a)
    assert not n.observe(3, a)          # within the window: the same passer-by morphing
    assert not n.observe(4, b)
    assert n.observe(10, a) and n.repeats == 1


def test_choose_prefers_unvisited_and_is_plain_when_all_new() -> None:
    n = Novelty(100, window=5)
    r = np.random.default_rng(0)
    cands = r.standard_normal((4, 100)).astype(np.float32)
    assert n.choose(cands) == 0
    n.visit(cands[0])
    cells = n.cells(cands)
    expect = int(np.argmin(n.visits[cells]))
    assert n.choose(cands) == expect and (cells[expect] != cells[0] or expect == 0)


def test_memory_roundtrip_and_bounded_size() -> None:
    n = Novelty(100, window=5)
    r = np.random.default_rng(1)
    for k in range(3000):
        n.visit(r.standard_normal(100).astype(np.float32))
        n.observe(k, r.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    m = Novelty(100, window=5)
    m.load_bytes(n.to_bytes())
    assert np.array_equal(m.visits, n.visits) and np.array_equal(m.ring, n.ring)
    assert n.nbytes < 1 << 20 and len(n.to_bytes()) < 1 << 20  # a year needs no more


def test_a_frozen_walk_is_detected_and_escaped(chain) -> None:  # type: ignore[no-untyped-def]
    """Force a fixed point (rho = 1: the walk stops) and watch the stream leap out."""
    cfg = dataclasses.replace(config.Config().traversal, feedback=0.0)
    s = Stream(chain, cfg, 4.0, seed=5)
    s.traversal.dt = 0.0  # rho = exp(0) = 1: z never moves by itself
    frames = [s.next_frame() for _ in range(60)]
    assert s.novelty.repeats > 0
    fp = fingerprint(np.stack([f.image for f in frames]))
    w = s.novelty.window
    far = [float(distance(fp[i], fp[j])) for i in range(len(fp)) for j in range(i + w + 1, len(fp))]
    assert min(far) >= NEAR_DUPLICATE, "a repeat was shown"
